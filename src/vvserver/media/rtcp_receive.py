"""SRTCP handled where it arrives: no queue, no task wake-up per packet.

aiortc puts every datagram that is not relayed (DTLS, SRTCP) on aioice's queue, where the DTLS
transport's receive task takes it, decrypts it and awaits each recipient's
`_handle_rtcp_packet`. A relayed call receives about ten RTCP datagrams a second (each side's
sender and receiver reports, REMB), and the queue hand-off, the task switch and the coroutine
chain cost more than the reports themselves (issue 15's profile: the receive task was the
largest Python cost after the per-packet chain went to C). Here an SRTCP datagram is decrypted
and parsed when the socket delivers it, and each recipient's handler runs at once, as the same
coroutine aiortc would await. Those handlers do not wait for anything in practice (report
statistics, REMB, NACK retransmissions, keyframe requests are all synchronous under their
`async def`); one that does is finished by a task, exactly as if a task had run it from the start.

DTLS, and SRTCP before DTLS is connected, still take aiortc's way. Two differences from
aiortc's order, harmless for reports: an SRTCP datagram may be handled before DTLS datagrams
still in aioice's queue, and within a compound packet a handler that waits no longer holds
back the next one. A handler that fails is logged; in aiortc it ended the receive task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RtcpPacket

from vvserver.media.receive_state import ReceiveCounters

logger = logging.getLogger(__name__)

RX_BYTES = "_RTCDtlsTransport__rx_bytes"  # the transport's counters getStats reads
RX_PACKETS = "_RTCDtlsTransport__rx_packets"


def is_srtcp(data: bytes) -> bool:
    """RFC 5761: RTP version 2 and an RTCP packet type (192-208) in the second byte."""
    return len(data) >= 8 and 127 < data[0] < 192 and 191 < data[1] < 209


class SrtcpReceiver:
    """One DTLS transport's SRTCP, handled synchronously (what aiortc's `_recv_next` and
    `_handle_rtcp_data` do for it)."""

    __slots__ = ("_counters", "_dtls", "_unfinished")

    def __init__(self, dtls: Any, counters: ReceiveCounters) -> None:
        self._dtls = dtls
        self._counters = counters
        # handlers that waited for something: a task finishes each (strong references here)
        self._unfinished: set[asyncio.Task[None]] = set()

    def ready(self) -> bool:
        """Whether SRTCP can be handled here: DTLS connected, with its SRTP sessions."""
        dtls = self._dtls
        return dtls._rx_srtp is not None and dtls._state == DtlsState.CONNECTED

    def receive(self, data: bytes) -> None:
        dtls = self._dtls
        setattr(dtls, RX_BYTES, getattr(dtls, RX_BYTES) + len(data))
        setattr(dtls, RX_PACKETS, getattr(dtls, RX_PACKETS) + 1)
        try:
            plain = dtls._rx_srtp.unprotect_rtcp(data)
        except pylibsrtp.Error:
            self._counters.undecryptable += 1
            return
        try:
            packets = RtcpPacket.parse(plain)
        except ValueError:
            self._counters.malformed += 1
            return
        router = dtls._rtp_router
        for packet in packets:
            for recipient in router.route_rtcp(packet):
                self._run(recipient._handle_rtcp_packet(packet))

    def _run(self, handler: Coroutine[Any, Any, None]) -> None:
        """Run `handler` until it finishes or waits; a task takes it from there."""
        try:
            awaited = handler.send(None)
        except StopIteration:
            return
        except Exception:
            # aiortc's receive task would die here and take the transport with it
            logger.exception("RTCP handler failed")
            return
        task = asyncio.ensure_future(Resumed(handler, awaited))
        self._unfinished.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._unfinished.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("RTCP handler failed", exc_info=exc)


class Resumed(Coroutine[Any, Any, None]):
    """A coroutine that already ran up to its first wait, for a task to finish: the task's
    first step gets what the coroutine waited for (the future it yielded), later steps go to
    the coroutine itself. A task treats it as any coroutine (`collections.abc.Coroutine`);
    it is not meant to be awaited directly."""

    __slots__ = ("_awaited", "_coroutine", "_started")

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            awaited, self._awaited = self._awaited, None
            return awaited
        return self._coroutine.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not self._started:  # cancelled before its first step: what it waited for too
            self._started = True
            awaited, self._awaited = self._awaited, None
            if isinstance(awaited, asyncio.Future):
                awaited.cancel()
        if val is None and tb is None:
            return self._coroutine.throw(typ)
        return self._coroutine.throw(typ, val, tb)

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, None, None]:
        raise TypeError("a Resumed coroutine is for a task to run (asyncio.ensure_future)")
