"""Feeds fan frames out to subscribers with bounded queues, keyframe discipline and
timestamps that never run backwards."""

from __future__ import annotations

import asyncio

from vvserver.media.forwarding import Feed, ForwardedTrack
from vvserver.media.frames import EncodedFrame


async def next_bytes(track: ForwardedTrack) -> bytes:
    async with asyncio.timeout(2):
        return bytes(await track.recv())


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def video_frame(
    n: int, *, key: bool = False, ts: int | None = None, loss: bool = False
) -> EncodedFrame:
    return EncodedFrame(
        kind="video",
        data=f"frame-{n}".encode(),
        rtp_timestamp=(n * 3000 if ts is None else ts) % (1 << 32),
        keyframe=key,
        ssrc=42,
        arrival=n / 30,
        after_loss=loss,
    )


def video_feed(clock: FakeClock) -> tuple[Feed, list[int]]:
    plis: list[int] = []
    feed = Feed("video", "visitor/video", keyframe_interval=0.5, clock=clock)
    segment = feed.attach_publisher(plis.append)
    assert segment == 1
    return feed, plis


async def test_a_new_subscriber_starts_at_a_keyframe_and_asks_for_one() -> None:
    clock = FakeClock()
    feed, plis = video_feed(clock)
    feed.publish(video_frame(0, key=True), 1)
    track = ForwardedTrack("video", "kiosk/video")
    feed.subscribe(track)
    assert plis == [42]  # the publisher is asked for a keyframe right away
    feed.publish(video_frame(1), 1)
    assert track.queued == 0  # a delta frame is useless without its keyframe
    feed.publish(video_frame(2, key=True), 1)
    feed.publish(video_frame(3), 1)
    assert [await next_bytes(track) for _ in range(2)] == [b"frame-2", b"frame-3"]


async def test_a_slow_subscriber_drops_to_the_next_keyframe_and_its_queue_stays_bounded() -> None:
    clock = FakeClock()
    feed, _ = video_feed(clock)
    fast = ForwardedTrack("video", "fast", max_queue=5)
    slow = ForwardedTrack("video", "slow", max_queue=5)
    feed.subscribe(fast)
    feed.subscribe(slow)
    received: list[bytes] = []
    for n in range(40):
        clock.now = n / 30
        feed.publish(video_frame(n, key=n % 20 == 0), 1)
        assert slow.queued <= 5
        received.append(await next_bytes(fast))
        if n == 0:
            assert await next_bytes(slow) == b"frame-0"  # it starts, then falls behind
    assert received == [f"frame-{n}".encode() for n in range(40)]
    assert slow.frames_dropped > 0
    assert slow.queued == 0  # it fell behind again after frame 20 and waits for a keyframe
    feed.publish(video_frame(40, key=True), 1)
    assert await next_bytes(slow) == b"frame-40"
    assert slow.keyframe_requests >= 1


async def test_keyframe_requests_are_rate_limited_and_retried_until_a_keyframe_comes() -> None:
    clock = FakeClock()
    feed, plis = video_feed(clock)
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


async def test_after_lost_frames_the_feed_holds_deltas_until_a_keyframe() -> None:
    clock = FakeClock()
    feed, plis = video_feed(clock)
    track = ForwardedTrack("video", "kiosk/video")
    feed.subscribe(track)
    feed.publish(video_frame(0, key=True), 1)
    assert await next_bytes(track) == b"frame-0"  # the subscriber's sender runs
    feed.publish(video_frame(3, loss=True), 1)
    feed.publish(video_frame(4), 1)
    feed.publish(video_frame(5, key=True), 1)
    assert await next_bytes(track) == b"frame-5"
    assert track.queued == 0
    assert feed.frames_held == 2
    assert plis  # and a keyframe was asked for


async def test_timestamps_continue_across_a_reconnect_and_never_run_backwards() -> None:
    clock = FakeClock()
    feed, _ = video_feed(clock)
    track = ForwardedTrack("video", "kiosk/video")
    feed.subscribe(track)
    pts: list[int] = []
    async with asyncio.timeout(2):
        for n in range(3):
            feed.publish(video_frame(n, key=n == 0, ts=4_294_964_000 + n * 3000), 1)
            pts.append((await track.recv()).pts or 0)
        segment = feed.attach_publisher(lambda ssrc: None)  # the visitor reconnected
        feed.publish(video_frame(93, key=True, ts=17), segment)  # new random origin, 3 s on
        feed.publish(video_frame(94, ts=3017), segment)
        pts += [(await track.recv()).pts or 0 for _ in range(2)]
    assert pts[:3] == [0, 3000, 6000]  # RTP wrap-around inside a segment
    assert pts[3] == 6000 + round((93 - 2) / 30 * 90_000)  # arrival gap across segments
    assert pts[4] - pts[3] == 3000


async def test_a_replaced_publisher_cannot_publish_any_more() -> None:
    clock = FakeClock()
    feed, _ = video_feed(clock)
    track = ForwardedTrack("video", "kiosk/video")
    feed.subscribe(track)
    feed.attach_publisher(lambda ssrc: None)
    feed.publish(video_frame(0, key=True), 1)
    assert track.queued == 0


async def test_audio_subscribers_drop_the_oldest_packets_when_full() -> None:
    feed = Feed("audio", "visitor/audio", clock=FakeClock())
    feed.attach_publisher(lambda ssrc: None)
    track = ForwardedTrack("audio", "kiosk/audio", max_queue=3)
    feed.subscribe(track)
    for n in range(5):
        feed.publish(EncodedFrame("audio", bytes([n]), n * 960, True, 7, n * 0.02), 1)
    assert [await next_bytes(track) for _ in range(3)] == [b"\x02", b"\x03", b"\x04"]
    track.stop()
    assert feed.subscribers == ()


async def test_before_its_connection_is_up_a_subscriber_keeps_only_fresh_media() -> None:
    clock = FakeClock()
    feed, _ = video_feed(clock)
    video = ForwardedTrack("video", "kiosk/video")
    feed.subscribe(video)
    for n in range(25):  # a keyframe every 10 frames; nobody pulls yet
        feed.publish(video_frame(n, key=n % 10 == 0), 1)
    assert await next_bytes(video) == b"frame-20"  # starts at the latest keyframe
    assert video.queued == 4

    audio_feed = Feed("audio", "visitor/audio", clock=clock)
    audio_feed.attach_publisher(lambda ssrc: None)
    audio = ForwardedTrack("audio", "kiosk/audio")
    audio_feed.subscribe(audio)
    for n in range(40):
        audio_feed.publish(EncodedFrame("audio", bytes([n]), n * 960, True, 7, n * 0.02), 1)
    assert audio.queued == 3
    assert await next_bytes(audio) == b"\x25"


async def test_a_flooding_publisher_is_cut_to_its_budget_and_resumes_on_a_keyframe() -> None:
    clock = FakeClock()
    feed = Feed("video", "visitor/video", clock=clock, max_bitrate=80_000)  # 10 kB/s
    feed.attach_publisher(lambda ssrc: None)
    track = ForwardedTrack("video", "kiosk/video", max_queue=1000)
    feed.subscribe(track)
    forwarded: list[int] = []
    for n in range(100):  # 100 kB in one second: ten times the budget
        clock.now = n / 100
        data = (b"\x10\x02\x00\x9d\x01\x2a" if n % 25 == 0 else b"\x31") + bytes(1000)
        feed.publish(EncodedFrame("video", data, n * 900, n % 25 == 0, 1, clock.now), 1)
        while track.queued:
            forwarded.append(len(await next_bytes(track)))
    assert feed.frames_over_budget >= 75
    assert 0 < len(forwarded) <= 25
    assert sum(forwarded) <= 20_100  # a 10 kB burst plus 10 kB/s
    clock.now = 3.0  # the flood stops; the budget refills
    feed.publish(EncodedFrame("video", b"\x31" + bytes(10), 0, False, 1, 3.0), 1)
    assert track.queued == 0  # a delta after dropped frames is held
    keyframe = b"\x10\x02\x00\x9d\x01\x2a" + bytes(10)
    feed.publish(EncodedFrame("video", keyframe, 0, True, 1, 3.01), 1)
    assert track.queued == 1
