"""The server's clock ends visits on time; officers watch without being seen, except where
the visit is privileged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.media.conftest import Resources, assert_back_to
from vvserver.client.peer import PeerSection, TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.room import VisitRoom
from vvserver.media.room_events import MonitorRefused, Role, VisitEnded, VisitWarning

pytestmark = pytest.mark.slow

MONITOR_SECTIONS = (
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
)


async def join(room: VisitRoom, role: Role, peer: TestPeer) -> None:
    await peer.connect(room.joiner(role))
    await peer.wait_connected(within=10)


async def test_the_clock_warns_then_ends_the_visit_on_time_and_hangs_up_everyone(
    clip: Clip,
) -> None:
    baseline = Resources.now()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ends_at = datetime.now(UTC) + timedelta(seconds=3)
    room = VisitRoom(201, ends_at=ends_at, warnings=[timedelta(seconds=2)])
    events = room.events()
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        timeline: list[tuple[float, object]] = []
        async with asyncio.timeout(10):
            async for event in events:
                timeline.append((loop.time() - started, event))
        warning_at = next(t for t, e in timeline if isinstance(e, VisitWarning))
        end_at, end = timeline[-1]
        assert end == VisitEnded(201, "time_up", "the visit's time is over")
        assert abs(warning_at - 1.0) <= 1.0
        assert abs(end_at - 3.0) <= 1.0  # the correctness deadline: slot end +-1 s
        assert room.participant("visitor") is None
        assert room.participant("kiosk") is None
        for peer in (visitor, kiosk):  # the peers see the hang-up
            await peer.wait_for_state({"closed", "failed"}, within=5)
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
    del room, visitor, kiosk, events, timeline, end, peer
    await assert_back_to(baseline)


async def test_a_monitor_sees_both_sides_within_a_second_and_sends_nothing(clip: Clip) -> None:
    room = VisitRoom(202)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    officer = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
    try:
        await join(room, "visitor", visitor)
        await join(room, "kiosk", kiosk)
        await kiosk.received_media("video").wait_for_frames(10, within=10)
        joined_at = asyncio.get_running_loop().time()
        answer = await room.monitor("officer-7", await officer.create_offer())
        await officer.accept_answer(answer)
        assert answer.count("a=sendonly") == 4  # the relay never listens to a monitor
        for nth in (0, 1):
            video = officer.received_media("video", nth)
            await video.wait_for_keyframes(1, within=5)
            assert video.first_keyframe_at is not None
            assert video.first_keyframe_at - joined_at < 1.0
            await officer.received_media("audio", nth).wait_for_frames(10, within=5)
        # per kind, the first section is the visitor and the second the kiosk
        visitor_sent = {clip.video[i].digest for i in visitor.sent_track("video").sent}
        kiosk_sent = {clip.video[i].digest for i in kiosk.sent_track("video").sent}
        assert set(officer.received_media("video", 0).digests) <= visitor_sent
        assert set(officer.received_media("video", 1).digests) <= kiosk_sent
        assert room.monitor_ids == ("officer-7",)
        await room.stop_monitor("officer-7")
        assert "officer-7" not in room.monitor_ids
        assert room.participant("visitor") is not None  # the visit goes on
    finally:
        await room.close()
        for peer in (visitor, kiosk, officer):
            await peer.close()


async def test_a_privileged_visit_refuses_monitors_beside_a_control_visit_that_allows_them(
    clip: Clip,
) -> None:
    control = VisitRoom(203)
    privileged = VisitRoom(204, privileged=True)
    watcher = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
    refused = TestPeer("officer-2", clip, sections=MONITOR_SECTIONS)
    try:
        answer = await control.monitor("officer-1", await watcher.create_offer())
        assert answer.startswith("v=0")
        with pytest.raises(MonitorRefused) as caught:
            await privileged.monitor("officer-1", await refused.create_offer())
        assert caught.value.code == "privileged_visit"
        assert privileged.monitor_ids == ()
        assert control.monitor_ids == ("officer-1",)
    finally:
        await control.close()
        await privileged.close()
        await watcher.close()
        await refused.close()
