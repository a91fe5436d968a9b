"""SRTCP is handled when it arrives, not through aiortc's queue and receive task.

A real call through a room: the peers' sender and receiver reports reach the relay's senders
and receivers (what getStats and the quality meter read: round-trip time, loss, the remote
sender's counts), and none of it goes through the DTLS transport's `_handle_rtcp_data`. A
handler that waits for something is finished by a task, one that fails is logged, and a
datagram that does not decrypt or parse is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport

from tests.media.conftest import Resources, assert_back_to
from tests.media.test_room import join
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.receive_state import ReceiveCounters
from vvserver.media.room import VisitRoom
from vvserver.media.rtcp_receive import SrtcpReceiver, is_srtcp


def count_calls(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, calls: Counter[str]
) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


async def test_the_peers_reports_reach_the_relay_without_the_receive_task(
    clip: Clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    count_calls(monkeypatch, RTCDtlsTransport, "_handle_rtcp_data", calls)  # aiortc's way
    count_calls(monkeypatch, SrtcpReceiver, "receive", calls)
    baseline = Resources.now()
    room = VisitRoom(501)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        server = room.participant("visitor")
        assert server is not None
        wanted = {"remote-inbound-rtp", "remote-outbound-rtp"}
        types: set[str] = set()
        for _ in range(60):  # aiortc's peers report every 0.5-1.5 s
            report = await server.pc.getStats()
            types = {stats.type for stats in report.values()}
            if wanted <= types:
                break
            await asyncio.sleep(0.1)
        # The visitor's receiver reports reached the relay's senders (round-trip time, loss)
        # and its sender reports the relay's receivers, through the relay's own path.
        assert wanted <= types, types
        remote_inbound = [s for s in report.values() if s.type == "remote-inbound-rtp"]
        assert all(s.packetsLost == 0 for s in remote_inbound)
        assert calls["receive"] >= 2
        assert calls["_handle_rtcp_data"] == 0
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
    del room, visitor, kiosk, server
    await asyncio.sleep(0)
    await assert_back_to(baseline)


# --- one transport's SRTCP, on stand-ins for aiortc's DTLS transport ----------------------


class Session:
    """pylibsrtp's session: here the 'decrypted' packet is the datagram itself."""

    def unprotect_rtcp(self, data: bytes) -> bytes:
        if data.endswith(b"bad!"):
            import pylibsrtp

            raise pylibsrtp.Error("authentication failed")
        return data


class Recipient:
    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.handled: list[Any] = []

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        await self.handler(self, packet)


class Router:
    def __init__(self, *recipients: Recipient) -> None:
        self.recipients = recipients

    def route_rtcp(self, packet: Any) -> tuple[Recipient, ...]:
        return self.recipients


class Dtls:
    def __init__(self, *recipients: Recipient) -> None:
        from aiortc.rtcdtlstransport import State

        self._rx_srtp = Session()
        self._state = State.CONNECTED
        self._rtp_router = Router(*recipients)
        self._RTCDtlsTransport__rx_bytes = 0
        self._RTCDtlsTransport__rx_packets = 0


# An RTCP receiver report with one report block, as peers send it (unencrypted here).
RECEIVER_REPORT = bytes.fromhex("81c9000700001234000056780000000000000010000000000000000000000000")


async def test_a_handler_that_waits_is_finished_by_a_task() -> None:
    later: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def waits(recipient: Recipient, packet: Any) -> None:
        recipient.handled.append(("before", packet.ssrc))
        recipient.handled.append(await later)
        await asyncio.sleep(0)
        recipient.handled.append("after")

    async def at_once(recipient: Recipient, packet: Any) -> None:
        recipient.handled.append(("at once", packet.ssrc))

    waiting, immediate = Recipient(waits), Recipient(at_once)
    dtls = Dtls(waiting, immediate)
    receiver = SrtcpReceiver(dtls, ReceiveCounters())
    assert is_srtcp(RECEIVER_REPORT)
    assert receiver.ready()
    receiver.receive(RECEIVER_REPORT)
    # both ran at once, up to the first wait
    assert waiting.handled == [("before", 0x1234)]
    assert immediate.handled == [("at once", 0x1234)]
    assert dtls._RTCDtlsTransport__rx_packets == 1
    assert dtls._RTCDtlsTransport__rx_bytes == len(RECEIVER_REPORT)
    later.set_result("resumed")
    for _ in range(5):
        await asyncio.sleep(0)
    assert waiting.handled == [("before", 0x1234), "resumed", "after"]


async def test_a_waiting_handler_cancelled_before_its_task_ran_cancels_what_it_waited_for() -> None:
    later: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def waits(recipient: Recipient, packet: Any) -> None:
        try:
            await later
        except asyncio.CancelledError:
            recipient.handled.append("cancelled")
            raise

    recipient = Recipient(waits)
    receiver = SrtcpReceiver(Dtls(recipient), ReceiveCounters())
    receiver.receive(RECEIVER_REPORT)
    [task] = receiver._unfinished
    task.cancel()  # before the task's first step
    for _ in range(5):
        await asyncio.sleep(0)
    assert task.cancelled()
    assert later.cancelled()
    assert recipient.handled == ["cancelled"]
    assert not receiver._unfinished


async def test_a_failing_handler_is_logged_and_the_next_packet_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails(recipient: Recipient, packet: Any) -> None:
        recipient.handled.append(packet.ssrc)
        raise RuntimeError("a bug in a handler")

    recipient = Recipient(fails)
    receiver = SrtcpReceiver(Dtls(recipient), ReceiveCounters())
    with caplog.at_level(logging.ERROR, logger="vvserver.media.rtcp_receive"):
        receiver.receive(RECEIVER_REPORT)
        receiver.receive(RECEIVER_REPORT)
    assert recipient.handled == [0x1234, 0x1234]
    assert caplog.text.count("RTCP handler failed") == 2


async def test_undecryptable_and_malformed_reports_are_counted_and_dropped() -> None:
    async def handle(recipient: Recipient, packet: Any) -> None:
        recipient.handled.append(packet)

    recipient = Recipient(handle)
    counters = ReceiveCounters()
    receiver = SrtcpReceiver(Dtls(recipient), counters)
    receiver.receive(RECEIVER_REPORT[:8] + b"bad!")  # fails authentication
    receiver.receive(RECEIVER_REPORT[:4])  # too short for its length field
    receiver.receive(bytes.fromhex("81c900ff") + bytes(8))  # says 1 KB, is 12 bytes
    assert recipient.handled == []
    assert counters.undecryptable == 1
    assert counters.malformed == 2


def test_srtcp_is_told_from_srtp_dtls_and_stun() -> None:
    assert is_srtcp(RECEIVER_REPORT)
    assert not is_srtcp(bytes.fromhex("8060") + bytes(10))  # RTP, payload type 96
    assert not is_srtcp(bytes.fromhex("16fefd") + bytes(10))  # DTLS
    assert not is_srtcp(bytes.fromhex("0001") + bytes(18))  # STUN
    assert not is_srtcp(RECEIVER_REPORT[:7])
