"""A visit room forwards both sides' encoded media unchanged, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket

import pytest

from tests.media.conftest import Resources, assert_back_to
from vvserver.client.peer import ClipTrack, PeerSection, ReceivedMedia, TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.frames import MediaKind
from vvserver.media.offers import OfferRejected
from vvserver.media.room import VisitRoom
from vvserver.media.room_events import (
    MediaNotConnected,
    ParticipantStateChanged,
    QualityReport,
    Role,
    RoomClosed,
    VisitEnded,
)

pytestmark = pytest.mark.slow


async def join(room: VisitRoom, role: Role, peer: TestPeer) -> None:
    await peer.connect(room.joiner(role))
    await peer.wait_connected(within=10)


def assert_forwarded_unchanged(sent: ClipTrack, received: ReceivedMedia, clip: Clip) -> None:
    """What arrived is an unbroken run of exactly the bytes that were sent."""
    sent_digests = [clip.frames(sent.kind)[i].digest for i in sent.sent]
    assert received.frames >= 30
    first = sent_digests.index(received.digests[0])
    # the clip loops, so look for the occurrence that lines up with the whole run
    starts = [i for i, d in enumerate(sent_digests) if d == received.digests[0]]
    assert any(
        sent_digests[start : start + len(received.digests)] == received.digests for start in starts
    ), f"received {received.kind} is not an unbroken copy of what was sent (from {first})"


async def settle(*peers: TestPeer) -> None:
    """Stop the clips and give frames in flight time to arrive."""
    for peer in peers:
        for track in peer.sending:
            if track is not None:
                track.paused = True
    await asyncio.sleep(0.3)


async def test_both_sides_receive_exactly_the_bytes_the_other_sent(clip: Clip) -> None:
    baseline = Resources.now()
    room = VisitRoom(101)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        for peer in (visitor, kiosk):
            await peer.received_media("video").wait_for_frames(45, within=10)
            await peer.received_media("audio").wait_for_frames(75, within=10)
        await settle(visitor, kiosk)
        kinds: tuple[MediaKind, ...] = ("audio", "video")
        for sender, receiver in ((visitor, kiosk), (kiosk, visitor)):
            for kind in kinds:
                received = receiver.received_media(kind)
                assert_forwarded_unchanged(sender.sent_track(kind), received, clip)
                assert all(index is not None for index in received.clip_indices)
            assert receiver.received_media("video").keyframes >= 1
    finally:
        await room.close()
        await room.close()  # twice is fine
        await visitor.close()
        await kiosk.close()
    assert room.ended == VisitEnded(101, "closed", "")
    del room, visitor, kiosk, peer, sender, receiver, received
    await assert_back_to(baseline)


async def test_a_pli_from_one_side_reaches_the_other_sides_sender(clip: Clip) -> None:
    room = VisitRoom(102)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        video = kiosk.received_media("video")
        await video.wait_for_frames(10, within=10)
        requests_before = visitor.sent_track("video").keyframe_requests
        keyframes_before = video.keyframes
        await asyncio.sleep(0.6)  # let the room's keyframe rate limit pass
        await kiosk.request_keyframe("video")
        await video.wait_for_keyframes(keyframes_before + 1, within=1.0)
        assert visitor.sent_track("video").keyframe_requests > requests_before
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


async def test_a_reconnecting_visitor_sees_a_picture_within_a_second_and_the_kiosk_plays_on(
    clip: Clip,
) -> None:
    room = VisitRoom(103)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    second = TestPeer("visitor-again", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        await kiosk.received_media("video").wait_for_frames(15, within=10)
        await visitor.close()  # the browser tab reloads
        await asyncio.sleep(0.5)
        frames_before = kiosk.received_media("video").frames
        loop = asyncio.get_running_loop()
        await join(room, "visitor", second)
        joined_at = loop.time()
        picture = second.received_media("video")
        await picture.wait_for_frames(1, within=5)
        assert picture.first_keyframe_at is not None
        assert picture.first_keyframe_at - joined_at < 1.0
        await kiosk.received_media("video").wait_for_frames(frames_before + 30, within=10)
        timestamps = kiosk.received_media("video").rtp_timestamps
        steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(timestamps)]
        assert all(0 < step < 1 << 31 for step in steps), "kiosk timestamps ran backwards"
    finally:
        await room.close()
        for peer in (visitor, kiosk, second):
            await peer.close()


async def test_room_events_tell_joins_and_the_end(clip: Clip) -> None:
    room = VisitRoom(104)
    events = room.events()
    visitor = TestPeer("visitor", clip)
    try:
        await join(room, "visitor", visitor)
        await room.close("terminated", "ended by the facility")
    finally:
        await visitor.close()
    seen = [event async for event in events]
    assert seen[0] == ParticipantStateChanged(104, "visitor", "joined")
    assert seen[-1] == VisitEnded(104, "terminated", "ended by the facility")
    assert [event async for event in room.events()] == [seen[-1]]  # late subscribers too
    with pytest.raises(RoomClosed):
        await room.join("kiosk", "v=0\r\n")


async def test_bad_offers_are_refused_and_leave_nothing_behind(clip: Clip) -> None:
    baseline = Resources.now()
    room = VisitRoom(105)
    peer = TestPeer("visitor", clip)
    try:
        sdp = await peer.create_offer()
        with pytest.raises(OfferRejected) as garbled:
            await room.join("visitor", sdp.replace("a=rtpmap:97 VP8/90000", "a=rtpmap:x VP8/9"))
        assert garbled.value.code in ("offer_failed", "offer_unsupported_codec")
        no_fingerprint = "\r\n".join(
            line for line in sdp.splitlines() if not line.startswith("a=fingerprint")
        )
        with pytest.raises(OfferRejected) as refused:
            await room.join("visitor", no_fingerprint)
        assert refused.value.code == "offer_no_fingerprint"
        assert room.participant("visitor") is None
    finally:
        await room.close()
        await peer.close()
    del room, peer, garbled, refused  # tracebacks hold frames, and so the connections
    await assert_back_to(baseline)


async def test_a_participant_who_vanishes_is_dropped_cleanly(clip: Clip) -> None:
    baseline = Resources.now()
    room = VisitRoom(106)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        await kiosk.received_media("video").wait_for_frames(5, within=10)
        await room.leave("visitor")
        assert room.participant("visitor") is None
        assert room.participant("kiosk") is not None
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
    del room, visitor, kiosk
    await assert_back_to(baseline)


async def test_quality_reports_show_what_each_participant_sends(clip: Clip) -> None:
    room = VisitRoom(107, quality_interval=0.5)
    events = room.events()
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        reports = []
        async with asyncio.timeout(10):
            async for event in events:
                if isinstance(event, QualityReport) and event.role == "visitor":
                    reports.append(event)
                    if len(reports) == 3:
                        break
        latest = reports[-1]
        assert 20 <= latest.video_fps_in <= 40  # the clip runs at 30 fps
        assert 300_000 <= latest.bitrate_in_bps <= 900_000  # ~500 kbps video + 32 kbps audio
        assert latest.packets_lost_in == 0  # loopback
        assert room.quality("visitor") is not None
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


async def test_a_participant_who_hangs_up_is_dropped_and_the_room_waits_for_a_rejoin(
    clip: Clip,
) -> None:
    room = VisitRoom(108)
    events = room.events()
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        await kiosk.close()  # the kiosk's browser goes away
        async with asyncio.timeout(10):
            async for event in events:
                if event == ParticipantStateChanged(108, "kiosk", "disconnected"):
                    break
        assert room.participant("kiosk") is None
        assert room.participant("visitor") is not None
        assert not room.closed
    finally:
        await room.close()
        await visitor.close()


async def test_peers_that_never_connect_or_never_send_leave_nothing_behind(clip: Clip) -> None:
    baseline = Resources.now()
    room = VisitRoom(109)
    silent = TestPeer("visitor", clip)
    for track in silent.sending:
        if track is not None:
            track.paused = True  # connects, never sends a frame
    absent = TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", silent)
        await room.join("kiosk", await absent.create_offer())  # never applies the answer
        await asyncio.sleep(0.5)
        assert room.feed("visitor", "video").frames_in == 0
    finally:
        await room.close()
        await silent.close()
        await absent.close()
    del room, silent, absent, track
    await assert_back_to(baseline)


async def test_a_subscriber_on_a_weak_link_lowers_the_senders_bitrate(clip: Clip) -> None:
    room = VisitRoom(110)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    kiosk.receive_bitrate_limit = 150_000  # the kiosk's link can take 150 kbps
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        asked = await visitor.sent_track("video").wait_for_remb_at_most(150_000, within=10)
        assert room.feed("visitor", "video").lowest_subscriber_remb() == 150_000
        assert asked >= 64_000
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


async def test_a_visitor_can_switch_to_audio_only_by_rejoining(clip: Clip) -> None:
    room = VisitRoom(111)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    audio_only = TestPeer("visitor-audio", clip, sections=(PeerSection("audio"),))
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        await kiosk.received_media("video").wait_for_frames(5, within=10)
        await join(room, "visitor", audio_only)
        heard = kiosk.received_media("audio").frames
        await kiosk.received_media("audio").wait_for_frames(heard + 25, within=5)
        await audio_only.received_media("audio").wait_for_frames(25, within=5)
        assert not room.feed("visitor", "video").has_publisher
    finally:
        await room.close()
        for peer in (visitor, kiosk, audio_only):
            await peer.close()


def server_port(answer_sdp: str) -> int:
    candidate = next(x for x in answer_sdp.splitlines() if x.startswith("a=candidate:"))
    return int(candidate.split()[5])


async def test_a_flood_of_garbage_datagrams_does_not_break_the_call(clip: Clip) -> None:
    room = VisitRoom(112)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        answer = await room.join("visitor", await visitor.create_offer())
        await visitor.accept_answer(answer)
        await join(room, "kiosk", kiosk)
        await visitor.wait_connected(within=10)
        video = kiosk.received_media("video")
        await video.wait_for_frames(10, within=10)
        rng = random.Random(112)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for n in range(3000):
                first = (0x80, 0x16, 0x00, 0x01, rng.randrange(256))[n % 5]  # RTP, DTLS, STUN
                payload = bytes([first]) + rng.randbytes(rng.randrange(1, 1200))
                attacker.sendto(payload, ("127.0.0.1", server_port(answer)))
                if n % 100 == 0:
                    await asyncio.sleep(0)
        before = video.frames
        await video.wait_for_frames(before + 30, within=5)  # still ~30 fps afterwards
        assert room.participant("visitor") is not None
        assert visitor.pc.connectionState == "connected"
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


async def test_a_side_whose_media_never_connects_is_reported_once_after_the_timeout(
    clip: Clip,
) -> None:
    """The visitor's answer never gets applied (its ICE never starts: as behind a network that
    drops UDP): `connect_timeout` after it first joined the room publishes `MediaNotConnected`,
    once, although it offered again meanwhile; the kiosk, connected, is never reported."""
    room = VisitRoom(113, connect_timeout=1.0)
    subscription = room.events()
    reports: list[tuple[float, MediaNotConnected]] = []
    reported = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def collect() -> None:
        async for event in subscription:
            if isinstance(event, MediaNotConnected):
                reports.append((loop.time(), event))
                reported.set()

    collector = asyncio.create_task(collect())
    stuck, again = TestPeer("visitor", clip), TestPeer("visitor", clip)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        joined_at = loop.time()
        await room.join("visitor", await stuck.create_offer())
        await join(room, "kiosk", kiosk)
        await asyncio.sleep(0.3)
        await room.join("visitor", await again.create_offer())  # a re-offer: the wait goes on
        await asyncio.wait_for(reported.wait(), 5)
        assert [event for _, event in reports] == [MediaNotConnected(113, "visitor", 1.0)]
        assert 1.0 <= reports[0][0] - joined_at < 1.5
        # It gets through after all: no more reports (its next wait would start afresh).
        await join(room, "visitor", visitor)
        await asyncio.sleep(1.5)
        assert len(reports) == 1
    finally:
        await room.close()
        await collector
        for peer in (stuck, again, visitor, kiosk):
            await peer.close()


async def test_a_side_that_hangs_up_while_waiting_is_not_reported(clip: Clip) -> None:
    room = VisitRoom(114, connect_timeout=0.5)
    subscription = room.events()
    stuck = TestPeer("visitor", clip)
    try:
        await room.join("visitor", await stuck.create_offer())
        await room.leave("visitor")
        await asyncio.sleep(1.0)
    finally:
        await room.close()
        await stuck.close()
    events = [event async for event in subscription]
    assert not [event for event in events if isinstance(event, MediaNotConnected)]
