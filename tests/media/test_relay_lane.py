"""The relay's per-packet chain in C (`_relay_lane.c`) relays a call as the Python steps do,
and leaves Python only what happens per frame or per event."""

from __future__ import annotations

import asyncio
import functools
import random
import struct
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from tests.media.conftest import Resources, assert_back_to
from tests.media.rtp_wire import (
    CONTINUATION,
    DELTA_START,
    KEYFRAME_START,
    OPUS,
    VP8,
    SendingSender,
    extensions_map,
)
from tests.media.test_room import assert_forwarded_unchanged, join, settle
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media import _rtp_native, fast_receive
from vvserver.media.fast_receive import FastReceive
from vvserver.media.feed_sink import FeedSink
from vvserver.media.forwarding import Feed, ForwardedTrack, MediaCounters
from vvserver.media.frames import MediaKind, clock_rate
from vvserver.media.inbound_stream import InboundStream
from vvserver.media.media_flow import MediaPresence
from vvserver.media.packet_log import read_packet_log
from vvserver.media.receive_state import ReceiveCounters, _Nacks
from vvserver.media.recorder import ParticipantRecorder
from vvserver.media.room import VisitRoom
from vvserver.media.slot_gate import GatedFeed
from vvserver.media.srtp_session import LeanSrtp

pytestmark = pytest.mark.slow

PER_PACKET_STEPS: list[tuple[type, str]] = [
    (FastReceive, "_handle"),
    (Feed, "publish_packet"),
    (ForwardedTrack, "forward"),
    (Feed, "_assemble"),  # the assembler or audio gate of a feed, in Python
    (GatedFeed, "publish"),  # a complete frame: counted and recorded, in Python
]


def count_python_steps(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the calls of the Python functions the C chain stands in for."""
    calls: Counter[str] = Counter()
    for owner, name in PER_PACKET_STEPS:
        original: Callable[..., Any] = getattr(owner, name)

        def counted(*args: Any, _original: Any = original, _key: str = name, **kw: Any) -> Any:
            calls[_key] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("chain", ["C", "Python"])
async def test_a_call_is_relayed_unchanged_by_either_chain(
    clip: Clip, chain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chain == "Python":
        monkeypatch.setattr(fast_receive, "RELAY", None)
    else:
        assert fast_receive.RELAY is _rtp_native  # built by every install
    calls = count_python_steps(monkeypatch)
    baseline = Resources.now()
    counters = MediaCounters()
    room = VisitRoom(301, counters=counters)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        for peer in (visitor, kiosk):
            await peer.received_media("video").wait_for_frames(60, within=10)
            await peer.received_media("audio").wait_for_frames(100, within=10)
        await settle(visitor, kiosk)
        kinds: tuple[MediaKind, ...] = ("audio", "video")
        for sender, receiver in ((visitor, kiosk), (kiosk, visitor)):
            for kind in kinds:
                assert_forwarded_unchanged(
                    sender.sent_track(kind), receiver.received_media(kind), clip
                )
        forwarded = counters.packets_forwarded
        assert forwarded > 300
        in_python = sum(calls.values())
        if chain == "C":
            # The first packets of each stream (routing, the first frame, the subscriber's
            # start at a keyframe) are Python's; after that, packets that need nothing
            # unusual stay in C.
            assert in_python < forwarded * 0.2, calls
        else:
            assert calls["publish_packet"] >= forwarded
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
    del room, visitor, kiosk, peer, sender, receiver
    await asyncio.sleep(0)
    await assert_back_to(baseline)


# --- the same packets through both chains, on stand-ins for aiortc's transports ------------

KEY = bytes(range(30))
VIDEO_SSRC, NEW_VIDEO_SSRC, AUDIO_SSRC = 0x1111, 0x2222, 0x3333
BIG = bytes(1000)


class Clock:
    """The event loop's clock, set by the test before each packet."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Publisher:
    """One publishing transport's receive path (a real FastReceive on stand-ins for aiortc's
    DTLS transport and receiver), its feed, a recorder and one subscriber's real sender."""

    def __init__(
        self, pc: Any, kind: MediaKind, clock: Clock, ssrcs: list[int], directory: Path
    ) -> None:
        self.kind = kind
        self.events: list[tuple[Any, ...]] = []
        self.feed = Feed(kind, kind, clock=clock, max_bitrate=400_000)
        segment = self.feed.attach_publisher(
            lambda ssrc: self.events.append(("pli", ssrc)),
            lambda ssrc, lost: self.events.append(("nack upstream", ssrc, lost)),
        )
        self.directory = directory
        self.recorder = ParticipantRecorder(
            directory,
            visit_id=7,
            role=kind,
            feeds=(self.feed,),
            now=lambda: datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
            flush_interval=0.05,
        )
        self.track = ForwardedTrack(kind, kind)
        self.sending = SendingSender(pc, kind)
        self.sending.sender._ssrc = 0x0A0B0C0D
        self.sending.wire._tx_srtp = Session(  # type: ignore[assignment]
            policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        )
        self.track.bind(self.sending.path)
        self.feed.subscribe(self.track)
        self.presence = MediaPresence()
        dtls = SimpleNamespace(
            _rx_srtp=Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)),
            _RTCDtlsTransport__rx_bytes=0,
            _RTCDtlsTransport__rx_packets=0,
        )
        path: Any = FastReceive.__new__(FastReceive)
        path._dtls = dtls
        path._queue_datagram = lambda data, component: self.events.append(("aiortc", data))
        path._streams = {}
        path._sinks = {}
        path.counters = ReceiveCounters()
        path._rx_srtp = None
        path._native_context = 0
        path._send_nack = lambda inbound, ssrc, lost: self.events.append(("nack", ssrc, lost))
        path._send_pli = lambda inbound, ssrc: self.events.append(("pli from sink", ssrc))
        self.path = path
        # What aioice's connection calls (FastReceive.__init__ makes the same choice).
        self.data_received = (
            functools.partial(fast_receive.RELAY.relay_datagram, path)
            if fast_receive.RELAY is not None
            else path._datagram
        )
        self.stats: list[StreamStatistics] = []
        sink = FeedSink(self.feed, segment, self.presence, clock)
        for ssrc in ssrcs:
            inbound: Any = InboundStream.__new__(InboundStream)
            inbound.receiver = SimpleNamespace(_enabled=True)
            inbound.sink = sink
            inbound.kind = kind
            inbound.payload_types = {96 if kind == "video" else 111}
            inbound.original_ssrc = None
            inbound.is_rtx = {}
            inbound.clock_rate = clock_rate(kind)
            inbound.stats = StreamStatistics(inbound.clock_rate)
            inbound.estimator = None
            inbound.nacks = _Nacks() if kind == "video" else None
            inbound.frame_bytes = 0
            self.stats.append(inbound.stats)
            path._streams[ssrc] = inbound

    def outcome(self) -> dict[str, Any]:
        """Everything both chains must agree on (not the wall-clock parts: jitter, NTP)."""
        feed, track = self.feed, self.track
        sent = [
            (p.sequence_number, p.timestamp, p.marker, p.payload_type, p.ssrc, p.payload)
            for p in self.sent_packets()
        ]
        return {
            "sent": sent,
            "recorded": self.recorded(),
            "events": self.events,
            "receive counters": self.path.counters,
            "statistics": [
                (stats.packets_received, stats.max_seq, stats.cycles, stats.base_seq)
                for stats in self.stats
            ],
            "nack windows": [
                (i.nacks.max_seq, sorted(i.nacks.missing))
                for i in self.path._streams.values()
                if i.nacks is not None
            ],
            "presence": (self.presence.heard_at, self.presence.gap_from, self.presence.resumed_at),
            "feed": (feed.packets_in, feed.frames_in, feed.bytes_in, feed.keyframes_in,
                     feed.plis_sent, feed.frames_held, feed.packets_over_budget, feed.source,
                     feed._cut, feed._budget._tokens, feed._budget._at),
            "track": (track.frames_out, track.packets_out, track.frames_dropped,
                      track.keyframe_requests, track._seq_offset, track._ts_offset,
                      track._run_start, track._max_out, track._last_out_ts, track._last_at,
                      track._await_keyframe, track._source),
            "dtls": (self.path._dtls._RTCDtlsTransport__rx_bytes,
                     self.path._dtls._RTCDtlsTransport__rx_packets),
        }  # fmt: skip

    def recorded(self) -> dict[str, bytes]:
        """The packet logs the recorder wrote, byte for byte."""
        self.recorder.close()
        return {log.name: log.read_bytes() for log in sorted(self.directory.iterdir())}

    def sent_packets(self) -> list[RtpPacket]:
        receiver = LeanSrtp(Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)))
        return [
            RtpPacket.parse(receiver.unprotect(d), extensions_map())
            for d in self.sending.wire.socket.datagrams
        ]


Datagram = tuple[MediaKind, float, int, bytes]


def rtp_datagrams(script: list[tuple[Any, ...]]) -> list[Datagram]:
    """(kind, time, backlog, SRTP datagram) for each scripted packet, protected once (a
    duplicate is the same datagram again: SRTP's replay check drops it)."""
    outbound = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    protected: dict[tuple[int, int], bytes] = {}
    datagrams = []
    for kind, at, backlog, ssrc, seq, timestamp, marker, payload in script:
        if (ssrc, seq) not in protected:
            header = struct.pack(
                "!BBHII", 0x80, (0x80 if marker else 0) | (96 if kind == "video" else 111),
                seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc,
            )  # fmt: skip
            protected[ssrc, seq] = outbound.protect(header + payload)
        datagrams.append((kind, at, backlog, protected[ssrc, seq]))
    return datagrams


def a_troubled_stream() -> list[tuple[Any, ...]]:
    """Video and audio with what a real network and publisher do: in-order frames of several
    packets, a loss and its late retransmission, reordering, a duplicate, a frame without a
    marker bit, an outage, a slow subscriber socket, a burst over the byte budget, a new SSRC,
    sequence numbers wrapping."""
    script: list[tuple[Any, ...]] = []
    at = 0.0
    seq, timestamp = 65_500, 4_294_900_000
    audio_seq, audio_ts = 200, 1000

    def video(packets: list[bytes], *, marker: bool = True, ssrc: int = VIDEO_SSRC,
              backlog: int = 0, skip: tuple[int, ...] = ()) -> list[tuple[Any, ...]]:  # fmt: skip
        nonlocal seq, timestamp
        made = []
        for i, payload in enumerate(packets):
            last = i == len(packets) - 1
            item = ("video", at, backlog, ssrc, seq, timestamp, marker and last, payload)
            if i not in skip:
                made.append(item)
            seq += 1
        timestamp += 3000
        return made

    def audio() -> tuple[Any, ...]:
        nonlocal audio_seq, audio_ts
        audio_seq, audio_ts = audio_seq + 1, audio_ts + 960
        return ("audio", at, 0, AUDIO_SSRC, audio_seq, audio_ts, False, bytes([7]) * 60)

    key = [KEYFRAME_START, CONTINUATION, CONTINUATION]
    delta = [DELTA_START, CONTINUATION]
    for n in range(12):  # in order, wrapping the sequence numbers
        at += 0.033
        script += video(key if n == 0 else delta)
        script.append(audio())
    at += 0.033
    lost = video([*delta, CONTINUATION])  # the middle packet is lost, then comes late
    script += [lost[0], lost[2], audio()]
    at += 0.02
    script.append((*lost[1][:1], at, *lost[1][2:]))
    at += 0.033
    reordered = video([*delta, CONTINUATION])
    script += [reordered[0], reordered[2], reordered[1], reordered[1]]  # and a duplicate
    at += 0.033
    script += video(delta, marker=False)  # ends without a marker bit
    at += 0.033
    script += video(delta)
    at += 0.7  # an outage, then a jump in sequence numbers
    seq += 40
    script += [*video(delta), audio()]
    at += 0.033
    script += video(delta, backlog=10_000_000)  # the subscriber's socket is backed up
    for _ in range(3):
        at += 0.033
        script += video(key if _ == 2 else delta)
    at += 0.001
    script += video([KEYFRAME_START + BIG, *[CONTINUATION + BIG] * 60])  # over the budget
    for _ in range(3):
        at += 0.3
        script += [*video(delta), audio()]
    at += 0.3
    script += [*video(key), audio()]
    seq = 7  # the publisher restarts its stream with a new SSRC
    for n in range(4):
        at += 0.033
        script += [*video(key if n == 0 else delta, ssrc=NEW_VIDEO_SSRC), audio()]
    at += 0.033
    script += video(delta + [CONTINUATION] * 70, ssrc=NEW_VIDEO_SSRC)  # longer than the lane
    at += 0.033
    script += [*video(delta, ssrc=NEW_VIDEO_SSRC), audio()]
    return script


async def run_chain(
    chain: str,
    monkeypatch: pytest.MonkeyPatch,
    datagrams: list[tuple[MediaKind, float, int, bytes]],
    directory: Path,
) -> dict[MediaKind, dict[str, Any]]:
    from aiortc import RTCPeerConnection

    monkeypatch.setattr(fast_receive, "RELAY", _rtp_native if chain == "C" else None)
    random.seed(20261205)  # the tracks' random sequence and timestamp origins
    clock = Clock()
    pc = RTCPeerConnection()
    publishers: dict[MediaKind, Publisher] = {
        "video": Publisher(pc, "video", clock, [VIDEO_SSRC, NEW_VIDEO_SSRC], directory / "video"),
        "audio": Publisher(pc, "audio", clock, [AUDIO_SSRC], directory / "audio"),
    }
    try:
        for publisher in publishers.values():
            await publisher.sending.start(VP8 if publisher.kind == "video" else OPUS)
        for kind, at, backlog, datagram in datagrams:
            clock.now = 100.0 + at
            publisher = publishers[kind]
            publisher.sending.wire.socket.backlog = backlog
            publisher.data_received(datagram, 1)
        return {kind: publisher.outcome() for kind, publisher in publishers.items()}
    finally:
        for publisher in publishers.values():
            await publisher.sending.stop()
        await pc.close()


async def test_the_c_chain_does_what_the_python_chain_does_packet_for_packet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    datagrams = rtp_datagrams(a_troubled_stream())
    in_python = await run_chain("Python", monkeypatch, datagrams, tmp_path / "python")
    in_c = await run_chain("C", monkeypatch, datagrams, tmp_path / "c")
    for kind in ("video", "audio"):
        for part, expected in in_python[kind].items():
            assert in_c[kind][part] == expected, f"{kind}: {part}"
    video = in_c["video"]
    # The script does what it says: frames recorded and held after losses, NACKs, a cut,
    # restarts.
    assert video["feed"][1] > 20  # frames in
    assert video["feed"][5] > 0  # delta frames held until a keyframe
    assert len(video["sent"]) > 60
    assert any(event[0] == "nack" for event in video["events"])
    assert video["feed"][6] > 0  # packets over the budget
    assert video["feed"][7] >= 2  # a new source: the new SSRC
    kinds: tuple[MediaKind, ...] = ("video", "audio")
    for kind in kinds:
        [name] = in_c[kind]["recorded"]
        _, frames = read_packet_log(tmp_path / "c" / kind / name)
        assert len(list(frames)) >= 15


class FullDisk:
    """A packet log's file on a disk that has filled up."""

    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_a_disk_that_fills_up_stops_the_recording_not_the_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aiortc import RTCPeerConnection

    datagrams = rtp_datagrams(a_troubled_stream())
    clock = Clock()
    pc = RTCPeerConnection()
    publisher = Publisher(pc, "audio", clock, [AUDIO_SSRC], tmp_path)
    audio = [(at, datagram) for kind, at, _, datagram in datagrams if kind == "audio"]
    try:
        await publisher.sending.start(OPUS)
        for n, (at, datagram) in enumerate(audio):
            clock.now = 100.0 + at
            if n == 5:  # the disk fills up while the call is recorded
                writer: Any = publisher.recorder._writer
                writer._file = FullDisk()
            publisher.data_received(datagram, 1)
        assert publisher.recorder.failure == "OSError: [Errno 28] No space left on device"
        assert publisher.feed.subscribers == (publisher.track,)  # the recorder let go
        assert publisher.feed.frames_in == len(audio)  # every packet still counted ...
        assert publisher.track.packets_out == len(audio)  # ... and forwarded
    finally:
        await publisher.sending.stop()
        await pc.close()
