"""Sending rewritten RTP packets through an aiortc sender, synchronously, without its loop.

Part of the relay's use of aiortc internals (see `aiortc_hooks`, item 6 of its list): a
forwarding sender's `_run_rtp` loop is replaced, and `RtpSendPath.send` builds, keeps, encrypts
and sends each packet at once (in C when `vvserver.media._rtp_native` is built).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiortc
import aiortc.rtcrtpsender
from aiortc import (
    RTCRtpSender,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    HeaderExtensions,
    RtpPacket,
)

from vvserver.media.aiortc_hooks import (
    _SENDER,
    SENDER_PRIVATE_ATTRS,
    SENDER_RETRANSMIT_METHOD,
    SENDER_RUN_RTP_METHOD,
    HookError,
)
from vvserver.media.rtp_parsing import (
    EXTENSION_HEADER,
    RTP_HEADER,
    SEQ_TS_SSRC,
)
from vvserver.media.srtp_session import NATIVE, LeanSrtp, SrtpCalls, srtp_calls

if TYPE_CHECKING:
    from vvserver.media._rtp_native import RtpSender

logger = logging.getLogger(__name__)

# --- sending: rewritten RTP packets, synchronously, without a send loop -------------------

# The sender's _retransmit looks packets up at `sequence_number % RTP_HISTORY_SIZE`.
RTP_HISTORY_SIZE: int = aiortc.rtcrtpsender.RTP_HISTORY_SIZE  # type: ignore[attr-defined]
_DTLS = "_RTCDtlsTransport__"
_DTLS_CONNECTED = DtlsState.CONNECTED
MAX_SEND_BUFFER = 512 * 1024  # bytes queued in a subscriber's socket: past this it is slow
# What RtpSendPath.send returns.
SENT = 1
NOT_SENT = 0  # not started, disabled, not connected
BACKED_UP = -1  # the subscriber's socket is backed up: a slow subscriber
RTP_HEADER_BITS = 0x80  # version 2, no padding, no extension, no CSRC
RTP_EXTENSION_BIT = 0x10


class _PacketHistory(dict[int, Any]):
    """The sender's NACK history holding packet bytes; `get` parses the one `_retransmit` wants.

    Almost no packet is ever retransmitted, so an RtpPacket per packet sent (aiortc's way) is
    wasted work.
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        super().__init__()
        self._sender = sender

    def get(self, key: int, default: Any = None) -> Any:
        data: bytes | None = dict.get(self, key)
        if data is None:
            return default
        return RtpPacket.parse(data, getattr(self._sender, _SENDER + "rtp_header_extensions_map"))


class _NoFrames(MediaStreamTrack):
    """Never asked for frames: a forwarding sender's packets come from `RtpSendPath.send`."""

    async def recv(self) -> Any:  # pragma: no cover - nothing pulls from it
        raise MediaStreamError


def _dtls_send(dtls: Any, data: bytes, protect: Callable[[bytes], bytes]) -> bool:
    """Encrypt and send one RTP or RTCP packet on `dtls` at once (aiortc's `_send_rtp` and
    aioice's `sendto` are coroutines that never suspend: this is what they do). False when the
    transport is not connected."""
    if dtls._state is not _DTLS_CONNECTED:
        return False
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return False
    data = protect(data)
    pair.protocol.transport.sendto(data, pair.remote_addr)
    dtls._RTCDtlsTransport__tx_bytes += len(data)
    dtls._RTCDtlsTransport__tx_packets += 1
    return True


def send_rtcp_now(dtls: Any, packet: Any) -> None:
    """Send an RTCP packet (an aiortc Rtcp*Packet) on `dtls` at once, if it is connected."""
    if dtls._state is _DTLS_CONNECTED and dtls._tx_srtp is not None:
        _dtls_send(dtls, bytes(packet), dtls._tx_srtp.protect_rtcp)


class RtpSendPath:
    """Makes one RTCRtpSender send the packets it is handed, at once, rewritten for it.

    Replaces the sender's `_run_rtp` loop (per instance, before the sender starts) with one
    that only notes the negotiated codec and waits to be stopped; `send()` then builds each
    packet (the sender's SSRC, payload type and header extensions: mid and abs-send-time,
    aiortc's layout), keeps it in the NACK history, encrypts it and hands it to the socket.
    What the rest of the sender reads is kept: the RTCP sender-report counters, the history
    that `_retransmit` answers NACKs from (RTX when negotiated), the started/exited events
    `stop()` waits on. A NACKed packet that is not in the history is passed to `on_missing`
    (the relay asks the publisher for it).
    """

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_dtls",
        "_ext_prefix",
        "_ext_suffix",
        "_first_byte",
        "_has_abs_send_time",
        "_history",
        "_keep_history",
        "_last_timestamp",
        "_native",
        "_octets_sent",
        "_packets_sent",
        "_pair",
        "_payload_type",
        "_remote_addr",
        "_sender",
        "_socket",
        "_ssrc",
        "_tx_srtp",
        "on_missing",
        "on_start",
        "started",
    )

    def __init__(self, sender: RTCRtpSender) -> None:
        for name in SENDER_PRIVATE_ATTRS:
            if not hasattr(sender, _SENDER + name):
                raise HookError(f"RTCRtpSender has no {_SENDER + name}")
        if getattr(sender, _SENDER + "started") is not False:
            raise HookError("RtpSendPath needs a sender that has not started yet")
        self._sender: Any = sender  # its private counters are set per packet
        self.started = False
        self.on_start: Callable[[], None] | None = None
        self.on_missing: Callable[[int], None] | None = None
        self._history = _PacketHistory(sender)
        self._keep_history = False
        self._payload_type = 0
        self._ssrc = 0
        self._first_byte = RTP_HEADER_BITS
        self._ext_prefix = b""  # the extension block up to the abs-send-time value
        self._ext_suffix = b""  # and after it (padding)
        self._has_abs_send_time = False
        self._last_timestamp = -1
        self._dtls: Any = None
        self._tx_srtp: SrtpCalls | None = None  # on the transport's session, once it has one
        self._pair: Any = None  # the nominated candidate pair last sent on, and its
        self._socket: Any = None  # socket and remote address
        self._remote_addr: tuple[str, int] = ("", 0)
        self._native: RtpSender | None = None  # the C path, on a real SRTP session
        self._packets_sent = 0
        self._octets_sent = 0
        setattr(sender, _SENDER + "rtp_history", self._history)
        setattr(sender, SENDER_RUN_RTP_METHOD, self._run_rtp)
        retransmit: Callable[[int], Awaitable[None]] = getattr(sender, SENDER_RETRANSMIT_METHOD)

        async def retransmit_or_ask(sequence_number: int) -> None:
            kept = dict.get(self._history, sequence_number % RTP_HISTORY_SIZE)
            if kept is not None and SEQ_TS_SSRC.unpack_from(kept, 2)[0] == sequence_number:
                await retransmit(sequence_number)
            elif self.on_missing is not None:
                self.on_missing(sequence_number)

        setattr(sender, SENDER_RETRANSMIT_METHOD, retransmit_or_ask)

    @property
    def payload_type(self) -> int:
        """The negotiated payload type (once started)."""
        return self._payload_type

    @property
    def packets_sent(self) -> int:
        native = self._native
        return self._packets_sent + (native.packets_sent if native is not None else 0)

    @property
    def octets_sent(self) -> int:
        native = self._native
        return self._octets_sent + (native.octets_sent if native is not None else 0)

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        sender = self._sender
        getattr(sender, _SENDER + "rtp_started").set()
        try:
            if codec.payloadType is None:
                raise HookError("the sender's codec has no payload type")
            self._payload_type = codec.payloadType
            self._keep_history = codec.mimeType.lower().startswith("video/")  # only video is NACKed
            self._ssrc = sender._ssrc
            self._dtls = sender.transport
            self._set_extensions(getattr(sender, _SENDER + "rtp_header_extensions_map"))
            self.started = True
            if self.on_start is not None:
                self.on_start()
            await asyncio.get_running_loop().create_future()  # until stop() cancels it
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            # stop() waits for rtp_exited: never leave without setting it.
            logger.exception("a forwarding sender failed to start")
        self.started = False
        track = getattr(sender, _SENDER + "track")
        if track is not None:
            track.stop()
            setattr(sender, _SENDER + "track", None)
        setattr(sender, _SENDER + "encoder", None)
        getattr(sender, _SENDER + "rtp_exited").set()

    def _set_extensions(self, extensions_map: Any) -> None:
        """aiortc's extension block (mid, abs-send-time), split where abs-send-time goes."""
        mid = getattr(self._sender, _SENDER + "mid")
        low = extensions_map.set(HeaderExtensions(mid=mid, abs_send_time=0))
        high = extensions_map.set(HeaderExtensions(mid=mid, abs_send_time=0xFFFFFF))
        profile, value = low
        if not value:
            self._first_byte = RTP_HEADER_BITS
            return
        self._first_byte = RTP_HEADER_BITS | RTP_EXTENSION_BIT
        block = EXTENSION_HEADER.pack(profile, len(value) >> 2) + value
        differing = [i for i, (a, b) in enumerate(zip(value, high[1], strict=True)) if a != b]
        if len(differing) == 3 and differing[2] - differing[0] == 2:
            at = 4 + differing[0]
            self._ext_prefix, self._ext_suffix = block[:at], block[at + 3 :]
            self._has_abs_send_time = True
        else:
            self._ext_prefix, self._ext_suffix = block, b""

    def send(
        self, sequence_number: int, timestamp: int, marker: int, payload: bytes, ntp: int
    ) -> int:
        """Send one packet now: SENT, NOT_SENT (not started, disabled or not connected) or
        BACKED_UP (the socket's buffer is over MAX_SEND_BUFFER: a slow subscriber)."""
        if not self.started or not self._sender._enabled:
            return NOT_SENT
        dtls = self._dtls
        if dtls._state is not _DTLS_CONNECTED:
            return NOT_SENT
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return NOT_SENT
        lean = self._tx_srtp
        if pair is not self._pair or lean is None or lean.session is not dtls._tx_srtp:
            lean = self._use(pair, dtls._tx_srtp)
        socket = self._socket
        if socket.get_write_buffer_size() > MAX_SEND_BUFFER:
            return BACKED_UP
        native = self._native
        if native is not None:  # the steps below, in C (_rtp_native.c)
            native.send(sequence_number, timestamp, marker, payload, ntp)
            return SENT
        if self._has_abs_send_time:
            extension = (
                self._ext_prefix + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + self._ext_suffix
            )
        else:
            extension = self._ext_prefix
        packet = (
            RTP_HEADER.pack(
                self._first_byte,
                (0x80 if marker else 0) | self._payload_type,
                sequence_number,
                timestamp,
                self._ssrc,
            )
            + extension
            + payload
        )
        if self._keep_history:
            self._history[sequence_number % RTP_HISTORY_SIZE] = packet
        data = lean.protect(packet)
        socket.sendto(data, self._remote_addr)
        dtls._RTCDtlsTransport__tx_bytes += len(data)
        dtls._RTCDtlsTransport__tx_packets += 1
        sender = self._sender
        self._packets_sent += 1
        self._octets_sent += len(payload)
        sender._RTCRtpSender__packet_count = self._packets_sent
        sender._RTCRtpSender__octet_count = self._octets_sent
        if timestamp != self._last_timestamp:
            # What the sender's RTCP loop puts in its sender reports: a matching pair.
            self._last_timestamp = timestamp
            sender._RTCRtpSender__ntp_timestamp = ntp
            sender._RTCRtpSender__rtp_timestamp = timestamp
        return SENT

    def _use(self, pair: Any, session: Any) -> SrtpCalls:
        """Send on `pair` (the nominated pair: a new one after an ICE change) with the
        transport's SRTP `session` (a new one after a DTLS restart); in C when it can."""
        self._pair = pair
        self._socket = pair.protocol.transport
        self._remote_addr = pair.remote_addr  # a property building a tuple each time
        lean = self._tx_srtp = srtp_calls(session)
        if NATIVE is None or not isinstance(lean, LeanSrtp):
            self._native = None  # a test's stand-in session: Python's steps
            return lean
        if self._native is None:
            prefix, suffix = self._ext_prefix, self._ext_suffix
            extension = prefix + (bytes(3) + suffix if self._has_abs_send_time else b"")
            self._native = NATIVE.RtpSender(
                sender=self._sender,
                dtls=self._dtls,
                first_byte=self._first_byte,
                payload_type=self._payload_type,
                ssrc=self._ssrc,
                extension=extension,
                abs_send_time_at=len(prefix) if self._has_abs_send_time else -1,
                history=self._history if self._keep_history else None,
                history_size=RTP_HISTORY_SIZE,
            )
        self._native.use(
            session,
            lean.context,
            self._socket.sendto,
            self._remote_addr,
            pair,
            self._dtls.transport._connection._nominated,
            self._socket,
        )
        return lean


def track_for_sending(kind: str) -> MediaStreamTrack:
    """A track for a sender whose packets come from an `RtpSendPath` (never pulled)."""
    track = _NoFrames()
    track.kind = kind
    return track
