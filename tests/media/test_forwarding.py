"""Feeds forward each packet at once, rewritten per subscriber: keyframe starts, sequence
numbers without gaps across restarts, timestamps that never run backwards, NACKs answered or
passed upstream, a flooding publisher cut to its budget; frames only for the recorder."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from tests.media.rtp_wire import (
    CONTINUATION,
    DELTA_START,
    KEYFRAME_START,
    OPUS,
    VP8,
    SendingSender,
    rtp,
)
from vvserver.media.aiortc_hooks import RtpSlice, rtc_configuration
from vvserver.media.forwarding import Feed, ForwardedTrack
from vvserver.media.frames import EncodedFrame, MediaKind
from vvserver.media.rtp_send_path import MAX_SEND_BUFFER


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    connection = RTCPeerConnection(rtc_configuration([]))
    yield connection
    await connection.close()


def video_feed(clock: FakeClock) -> tuple[Feed, list[int], list[tuple[int, list[int]]]]:
    plis: list[int] = []
    nacks: list[tuple[int, list[int]]] = []
    feed = Feed("video", "visitor/video", keyframe_interval=0.5, clock=clock)
    segment = feed.attach_publisher(plis.append, lambda ssrc, lost: nacks.append((ssrc, lost)))
    assert segment == 1
    return feed, plis, nacks


def send_frame(
    feed: Feed, clock: FakeClock, first_seq: int, n: int, *, key: bool, segment: int = 1
) -> int:
    """Publish frame `n` (two packets, timestamp n * 3000) at n / 30 s; the next sequence."""
    clock.now = n / 30
    start = KEYFRAME_START if key else DELTA_START
    feed.publish_packet(rtp(first_seq, n * 3000, start, marker=False), segment, clock.now)
    feed.publish_packet(rtp(first_seq + 1, n * 3000, CONTINUATION), segment, clock.now)
    return first_seq + 2


async def subscriber(pc: RTCPeerConnection, feed: Feed, name: str) -> SendingSender:
    sending = SendingSender(pc, feed.kind)
    track = ForwardedTrack(feed.kind, name)
    track.bind(sending.path)
    feed.subscribe(track)
    return sending


def out_seqs(sending: SendingSender) -> list[int]:
    return [p.sequence_number for p in sending.wire.packets]


def gap_free(seqs: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


async def test_a_subscriber_starts_at_a_keyframe_asked_for_when_its_sender_starts(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed, plis, _ = video_feed(clock)
    seq = send_frame(feed, clock, 1000, 0, key=True)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    seq = send_frame(feed, clock, seq, 1, key=True)
    assert kiosk.wire.packets == []  # its connection is not up: nothing to send to
    assert plis == []  # and no keyframe is asked for yet: it would be wasted
    await kiosk.start(VP8)
    assert plis == [42]  # asked for as soon as the sender runs
    seq = send_frame(feed, clock, seq, 2, key=False)
    assert kiosk.wire.packets == []  # a delta frame is useless without its keyframe
    seq = send_frame(feed, clock, seq, 3, key=True)
    seq = send_frame(feed, clock, seq, 4, key=False)
    packets = kiosk.wire.packets
    payloads = [KEYFRAME_START, CONTINUATION, DELTA_START, CONTINUATION]
    assert [p.payload for p in packets] == payloads  # unchanged
    assert gap_free(out_seqs(kiosk))
    assert {p.ssrc for p in packets} == {kiosk.sender._ssrc}
    assert {p.payload_type for p in packets} == {96}
    assert [p.marker for p in packets] == [0, 1, 0, 1]
    assert (packets[2].timestamp - packets[0].timestamp) % (1 << 32) == 3000
    assert all(p.extensions.mid == "0" and p.extensions.abs_send_time for p in packets)
    await kiosk.stop()


async def test_timestamps_follow_the_arrival_gap_across_a_reconnect_and_sequences_stay_gap_free(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed, _, _ = video_feed(clock)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    await kiosk.start(VP8)
    seq = 65_530  # wraps around during the first segment
    for n in range(3):
        seq = send_frame(feed, clock, seq, n, key=n == 0)
    segment = feed.attach_publisher(lambda ssrc: None)  # the visitor reconnected
    # a new random origin for sequence numbers and timestamps, 3 s later
    clock.now = 93 / 30
    feed.publish_packet(rtp(7, 17, KEYFRAME_START, marker=False, ssrc=9), segment, clock.now)
    feed.publish_packet(rtp(8, 17, CONTINUATION, ssrc=9), segment, clock.now)
    feed.publish_packet(rtp(9, 3017, DELTA_START, ssrc=9), segment, clock.now + 0.033)
    stamps = [p.timestamp for p in kiosk.wire.packets]
    assert gap_free(out_seqs(kiosk))  # the reconnect is not a run of losses
    frame_starts = [*stamps[::2][:3], stamps[6], stamps[8]]
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(frame_starts)]
    assert steps[:2] == [3000, 3000]  # RTP spacing inside a segment
    assert steps[2] == round((93 - 2) / 30 * 90_000)  # the arrival gap across segments
    assert steps[3] == 3000
    await kiosk.stop()


async def test_a_slow_subscriber_drops_to_the_next_keyframe_and_the_others_go_on(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed, plis, _ = video_feed(clock)
    fast = await subscriber(pc, feed, "fast")
    slow = await subscriber(pc, feed, "slow")
    await fast.start(VP8)
    await slow.start(VP8)
    seq = 0
    for n in range(40):
        if n == 5:
            slow.wire.socket.backlog = MAX_SEND_BUFFER + 1  # its socket backs up
        if n == 10:
            slow.wire.socket.backlog = 0
        seq = send_frame(feed, clock, seq, n, key=n % 20 == 0)
    assert len(fast.wire.packets) == 80  # all of it
    slow_payloads = [p.payload for p in slow.wire.packets]
    assert len(slow_payloads) == 10 + 40  # frames 0-4, then from the keyframe at 20
    assert slow_payloads[10] == KEYFRAME_START
    assert gap_free(out_seqs(slow))  # the drop is not a run of losses to it
    assert len(plis) == 1  # for the slow subscriber (the senders started before any media)
    await fast.stop()
    await slow.stop()


async def test_a_nack_is_answered_from_the_history_or_passed_to_the_publisher(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed, _, nacks = video_feed(clock)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    await kiosk.start(VP8)
    send_frame(feed, clock, 500, 0, key=True)
    send_frame(feed, clock, 504, 1, key=False)  # 502 and 503 never reached the relay
    sent = kiosk.wire.packets
    assert len(sent) == 4
    await kiosk.sender._retransmit(sent[1].sequence_number)
    assert kiosk.wire.socket.datagrams[-1] == kiosk.wire.socket.datagrams[1]
    missing = (sent[1].sequence_number + 2) & 0xFFFF  # what the kiosk sees missing
    await kiosk.sender._retransmit(missing)
    assert nacks == [(42, [503])]  # asked of the publisher under its own number
    late = rtp(503, 3000, CONTINUATION, marker=False)
    feed.publish_packet(late, 1, clock.now)  # the retransmission, forwarded in its place
    assert kiosk.wire.packets[-1].sequence_number == missing
    await kiosk.stop()


async def test_packets_from_before_a_restart_are_not_forwarded(pc: RTCPeerConnection) -> None:
    clock = FakeClock()
    feed, _, _ = video_feed(clock)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    await kiosk.start(VP8)
    send_frame(feed, clock, 100, 0, key=False)  # waits for a keyframe
    send_frame(feed, clock, 102, 1, key=True)
    feed.publish_packet(rtp(101, 0, CONTINUATION), 1, clock.now)  # late: before the start
    assert len(kiosk.wire.packets) == 2
    await kiosk.stop()


async def test_audio_is_forwarded_from_its_first_packet_as_it_arrives(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed = Feed("audio", "visitor/audio", clock=clock)
    feed.attach_publisher(lambda ssrc: None)
    kiosk = await subscriber(pc, feed, "kiosk/audio")
    await kiosk.start(OPUS)
    order = [0, 1, 3, 2, 4]  # packet 2 is late under jitter
    for n in order:
        packet = bytes([n]) * 40
        feed.publish_packet(RtpSlice(n, n * 960, True, 7, 111, packet, packet), 1, n * 0.02)
    packets = kiosk.wire.packets
    assert [p.payload[0] for p in packets] == order
    first = packets[0].sequence_number
    assert [(p.sequence_number - first) & 0xFFFF for p in packets] == order
    assert {p.payload_type for p in packets} == {111}
    assert feed.frames_in == 5  # the recorder's gate put it back in order
    kiosk_track = feed.subscribers[0]
    kiosk_track.stop()  # type: ignore[union-attr]
    assert feed.subscribers == ()
    await kiosk.stop()


async def test_a_flooding_publisher_is_cut_to_its_budget_and_resumes_on_a_keyframe(
    pc: RTCPeerConnection,
) -> None:
    clock = FakeClock()
    feed = Feed("video", "visitor/video", clock=clock, max_bitrate=80_000)  # 10 kB/s
    feed.attach_publisher(lambda ssrc: None)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    await kiosk.start(VP8)
    for n in range(100):  # 100 kB in one second: ten times the budget
        clock.now = n / 100
        start = KEYFRAME_START if n % 25 == 0 else DELTA_START
        feed.publish_packet(rtp(n, n * 900, start + bytes(1000)), 1, clock.now)
    assert feed.packets_over_budget >= 75
    forwarded = [len(p.payload) for p in kiosk.wire.packets]
    assert 0 < len(forwarded) <= 25
    assert sum(forwarded) <= 20_100  # a 10 kB burst plus 10 kB/s
    before = len(kiosk.wire.packets)
    clock.now = 3.0  # the flood stops; the budget refills
    feed.publish_packet(rtp(200, 90_000, DELTA_START), 1, clock.now)
    assert len(kiosk.wire.packets) == before  # a delta after dropped packets is held
    feed.publish_packet(rtp(201, 93_000, KEYFRAME_START), 1, clock.now + 0.01)
    assert len(kiosk.wire.packets) == before + 1
    await kiosk.stop()


async def test_a_replaced_publisher_cannot_publish_any_more(pc: RTCPeerConnection) -> None:
    clock = FakeClock()
    feed, _, _ = video_feed(clock)
    kiosk = await subscriber(pc, feed, "kiosk/video")
    await kiosk.start(VP8)
    feed.attach_publisher(lambda ssrc: None)
    send_frame(feed, clock, 0, 0, key=True, segment=1)
    assert kiosk.wire.packets == []
    assert feed.frames_in == 0
    await kiosk.stop()


def video_frame(n: int, *, key: bool = False, loss: bool = False) -> EncodedFrame:
    return EncodedFrame("video", f"frame-{n}".encode(), n * 3000, key, 42, n / 30, loss)


class Frames:
    """A frame subscriber (what a recorder is to the feed)."""

    def __init__(self) -> None:
        self.kind: MediaKind = "video"
        self.got: list[bytes] = []

    def attach(self, feed: Feed) -> None:
        pass

    def offer(self, frame: EncodedFrame, segment: int) -> None:
        self.got.append(frame.data)


async def test_keyframe_requests_are_rate_limited_and_retried_until_a_keyframe_comes() -> None:
    clock = FakeClock()
    feed, plis, _ = video_feed(clock)
    feed.publish(video_frame(0, key=True), 1)
    for n in range(1, 31):  # one second of delta frames, a request with each
        clock.now = n / 30
        feed.request_keyframe()
        feed.publish(video_frame(n), 1)
    assert len(plis) == 2  # at 0 s and 0.5 s: at most one per interval
    feed.publish(video_frame(31, key=True), 1)
    clock.now = 5.0
    feed.publish(video_frame(32), 1)
    assert len(plis) == 2  # the keyframe satisfied the request


async def test_after_lost_frames_the_recording_holds_deltas_until_a_keyframe() -> None:
    clock = FakeClock()
    feed, plis, _ = video_feed(clock)
    recorder = Frames()
    feed.subscribe_frames(recorder)
    feed.publish(video_frame(0, key=True), 1)
    feed.publish(video_frame(3, loss=True), 1)
    feed.publish(video_frame(4), 1)
    feed.publish(video_frame(5, key=True), 1)
    assert recorder.got == [b"frame-0", b"frame-5"]
    assert feed.frames_held == 2
    assert plis  # and a keyframe was asked for
