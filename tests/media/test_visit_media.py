"""A visit's call from the database's point of view: the visit goes live when both sides are
connected, the server's clock completes it, the recording lands in its row, officers watch
(audited) except on privileged visits, and terminate hangs everybody up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import World, add_visit
from tests.media.conftest import Resources
from tests.media.visit_media_support import (
    MONITOR_SECTIONS,
    assert_files_match_disk,
    audits,
    eventually,
    get_visit,
    join,
    recordings_of,
    staff,
    visit_is,
)
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.db.models import VisitTransition
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput
from vvserver.domain.services import Services
from vvserver.media.room_events import VisitEnded
from vvserver.media.room_registry import RoomRegistry
from vvserver.visits_live import VisitMedia


@pytest.fixture
async def media(services: Services) -> AsyncIterator[VisitMedia]:
    visit_media = VisitMedia(services, RoomRegistry(), quality_interval=1.0)
    yield visit_media
    await visit_media.close()


@pytest.mark.slow
async def test_a_short_visit_goes_live_ends_on_time_and_leaves_a_finished_recording(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    loop = asyncio.get_running_loop()
    visit_id = await add_visit(services, world, ends_in=5.0)
    visit = await get_visit(services, visit_id)
    ends_in = (visit.end_at - datetime.now(UTC)).total_seconds()
    ends_at = loop.time() + ends_in
    room = await media.open_room(visit_id)
    events = room.events()
    officer = staff(world, "officer_a")
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        await join(media, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        metrics = media.metrics()
        assert (metrics.rooms_open, metrics.participants_connected) == (1, 2)

        async def measured() -> bool:
            quality = await media.quality(visit_id, officer)
            return all(p.video_fps_in is not None for p in quality.participants)

        await eventually(measured, within=3)
        quality = await media.quality(visit_id, officer)
        assert quality.call_open
        assert [p.role for p in quality.participants] == ["visitor", "kiosk"]
        assert all(p.connected and (p.bitrate_in_bps or 0) > 0 for p in quality.participants)

        async with asyncio.timeout(10):
            async for event in events:
                if isinstance(event, VisitEnded):
                    ended_at = loop.time()
                    break
        assert event == VisitEnded(visit_id, "time_up", "the visit's time is over")
        assert abs(ended_at - ends_at) <= 1.0  # the correctness deadline: end +-1 s
        for peer in (visitor, kiosk):
            await peer.wait_for_state({"closed", "failed"}, within=5)
        await media.wait_settled(visit_id)
    finally:
        await visitor.close()
        await kiosk.close()

    visit = await get_visit(services, visit_id)
    assert (visit.state, visit.end_reason, visit.counts_toward_limit) == (
        "completed",
        "time over",
        True,
    )
    assert visit.visitor_joined_at is not None
    assert visit.kiosk_joined_at is not None
    assert 2.0 <= visit.visitor_connected_s <= ends_in + 1
    assert 2.0 <= visit.kiosk_connected_s <= ends_in + 1
    assert visit.visitor_lost_s == visit.kiosk_lost_s == 0.0
    async with services.read() as s:
        moves = await s.execute(
            select(VisitTransition.to_state, VisitTransition.actor).where(
                VisitTransition.visit_id == visit_id
            )
        )
        assert [tuple(m) for m in moves] == [
            ("live", "system:media"),
            ("completed", "system:media"),
        ]

    [recording] = await recordings_of(services, visit_id)
    assert (recording.state, recording.directory, recording.legal_hold) == (
        "finished",
        f"visit-{visit_id}",
        False,
    )
    assert recording.finished_at is not None
    assert recording.purge_after == recording.finished_at + timedelta(days=90)
    media_files = {f["participant"]: f for f in recording.files if f["kind"] == "media"}
    assert set(media_files) == {"visitor", "kiosk"}
    for entry in media_files.values():
        assert entry["segment"] == 1
        assert 1.0 <= entry["duration_s"] <= ends_in + 1
    assert_files_match_disk(recording, services.settings.recordings_dir)
    metrics = media.metrics()
    assert (metrics.rooms_open, metrics.visits_went_live_total) == (0, 1)
    assert (metrics.recordings_finished_total, metrics.recording_failures_total) == (1, 0)


@pytest.mark.slow
async def test_a_privileged_visit_is_never_recorded_or_watched_beside_a_control_visit(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    control = await add_visit(services, world, ends_in=4.0)
    privileged = await add_visit(
        services, world, ends_in=4.0, kiosk="a2-1", person="pa2", privileged=True
    )
    officer = staff(world, "officer_a")
    peers = {
        visit_id: (TestPeer(f"visitor-{visit_id}", clip), TestPeer(f"kiosk-{visit_id}", clip))
        for visit_id in (control, privileged)
    }
    watcher = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
    refused = TestPeer("officer-refused", clip, sections=MONITOR_SECTIONS)
    try:
        for visit_id, (visitor, kiosk) in peers.items():
            await join(media, visit_id, "visitor", visitor)
            await join(media, visit_id, "kiosk", kiosk)
        answer = await media.monitor(control, officer, await watcher.create_offer())
        await watcher.accept_answer(answer)
        await watcher.received_media("video", 1).wait_for_keyframes(1, within=5)
        with pytest.raises(Forbidden) as caught:
            await media.monitor(privileged, officer, await refused.create_offer())
        assert caught.value.code == "privileged_visit"
        assert await media.stop_monitor(control, officer)
        assert not await media.stop_monitor(control, officer)  # nothing left to stop
        for visit_id in (control, privileged):
            await media.wait_settled(visit_id)
    finally:
        for pair in peers.values():
            for peer in pair:
                await peer.close()
        await watcher.close()
        await refused.close()

    assert [(await get_visit(services, v)).state for v in (control, privileged)] == [
        "completed",
        "completed",
    ]
    root = services.settings.recordings_dir
    [recording] = await recordings_of(services, control)
    assert recording.state == "finished"
    assert {f["participant"] for f in recording.files if f["kind"] == "media"} == {
        "visitor",
        "kiosk",
    }
    assert_files_match_disk(recording, root)
    assert await recordings_of(services, privileged) == []
    assert not any(p.name.startswith(f"visit-{privileged}") for p in root.iterdir())

    actor = officer.actor
    assert await audits(services, control) == [
        (actor, "visit.monitor.start", "success", {}),
        (actor, "visit.monitor.stop", "success", {"reason": "stopped by the officer"}),
    ]
    assert await audits(services, privileged) == [
        (actor, "visit.monitor.start", "failure", {"code": "privileged_visit"}),
    ]
    assert media.metrics().monitors_refused_total == 1


@pytest.mark.slow
async def test_an_officer_terminates_a_visit_and_everybody_is_hung_up(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    visit_id = await add_visit(services, world, ends_in=60.0)
    officer = staff(world, "officer_a")
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    watcher = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
    late = TestPeer("late", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        await join(media, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        await watcher.accept_answer(
            await media.monitor(visit_id, officer, await watcher.create_offer())
        )
        await watcher.wait_connected()
        await watcher.close()  # the officer's browser tab goes away: its stop is audited too

        async def monitor_stop_audited() -> bool:
            return any(a[1] == "visit.monitor.stop" for a in await audits(services, visit_id))

        await eventually(monitor_stop_audited)
        room = media.rooms.get(visit_id)
        assert room is not None
        events = room.events()
        with pytest.raises(InvalidInput) as missing:
            await media.terminate(visit_id, officer, "   ")
        assert missing.value.code == "reason_required"
        await media.terminate(visit_id, officer, "threats against the officer")
        for peer in (visitor, kiosk):
            await peer.wait_for_state({"closed", "failed"}, within=5)
        seen = [event async for event in events]
        assert seen[-1] == VisitEnded(visit_id, "terminated", "ended by the facility")
        await media.wait_settled(visit_id)
        with pytest.raises(Conflict):  # no way back in
            await media.join(visit_id, "visitor", await late.create_offer())
    finally:
        for peer in (visitor, kiosk, late):
            await peer.close()

    visit = await get_visit(services, visit_id)
    assert (visit.state, visit.end_reason, visit.counts_toward_limit) == (
        "terminated",
        "threats against the officer",
        True,
    )
    actor = officer.actor
    assert await audits(services, visit_id) == [
        (actor, "visit.monitor.start", "success", {}),
        (actor, "visit.monitor.stop", "success", {"reason": "connection closed"}),
        (
            actor,
            "visit.terminate",
            "success",
            {"reason": "threats against the officer", "from_state": "live"},
        ),
    ]
    [recording] = await recordings_of(services, visit_id)
    assert recording.state == "finished"  # what was recorded up to the termination is kept
    assert_files_match_disk(recording, services.settings.recordings_dir)


@pytest.mark.slow
async def test_a_hang_up_keeps_the_visit_live_and_counts_the_lost_time(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    visit_id = await add_visit(services, world, ends_in=6.0)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    rejoined = TestPeer("kiosk-again", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        await join(media, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        await kiosk.close()  # the kiosk drops out

        async def kiosk_lost() -> bool:
            room = media.rooms.get(visit_id)
            return room is not None and room.participant("kiosk") is None

        await eventually(kiosk_lost)
        await asyncio.sleep(1.0)
        assert (await get_visit(services, visit_id)).state == "live"
        await join(media, visit_id, "kiosk", rejoined)
        await media.wait_settled(visit_id)
    finally:
        await visitor.close()
        await kiosk.close()
        await rejoined.close()
    visit = await get_visit(services, visit_id)
    assert visit.state == "completed"
    assert 1.0 <= visit.kiosk_lost_s <= 5.0
    assert visit.visitor_lost_s == 0.0
    assert visit.kiosk_connected_s + visit.kiosk_lost_s <= visit.visitor_connected_s + 0.5
    [recording] = await recordings_of(services, visit_id)
    segments = sorted(
        (f["participant"], f["segment"]) for f in recording.files if f["kind"] == "media"
    )
    assert segments == [("kiosk", 1), ("kiosk", 2), ("visitor", 1)]


async def peers_and_tasks_back_to(baseline: Resources, within: float = 5.0) -> None:
    """Tasks and RTCPeerConnections return to `baseline` (fds and threads also count the
    database pool's connections, which grow with concurrency, so they are left out here)."""

    async def settled() -> bool:
        now = Resources.now()
        return (now.tasks, now.peer_connections) == (baseline.tasks, baseline.peer_connections)

    await eventually(settled, within)


@pytest.mark.slow
async def test_a_server_stop_mid_call_leaves_the_visit_resumable_and_its_recording_finished(
    services: Services, world: World, clip: Clip
) -> None:
    loop = asyncio.get_running_loop()
    visit_id = await add_visit(services, world, ends_in=60.0)
    baseline = Resources.now()
    first = VisitMedia(services, RoomRegistry(), quality_interval=None)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(first, visit_id, "visitor", visitor)
        await join(first, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        await kiosk.received_media("video").wait_for_frames(30, within=10)
        await first.close()  # the server shuts down
        stopped_at = loop.time()  # the ledger's last accounting is this stop
        for peer in (visitor, kiosk):
            await peer.wait_for_state({"closed", "failed"}, within=5)
    finally:
        await visitor.close()
        await kiosk.close()
    del first, visitor, kiosk, peer
    await peers_and_tasks_back_to(baseline)

    visit = await get_visit(services, visit_id)
    assert (visit.state, visit.end_reason, visit.start_pushed_at) == ("ready", None, None)
    first_connected = visit.visitor_connected_s
    assert first_connected > 0.5
    # The call stays open in the row: both sides lose the time until their media returns.
    assert visit.ledger_at is not None
    assert visit.visitor_in_call
    assert visit.kiosk_in_call
    [recording] = await recordings_of(services, visit_id)
    assert recording.state == "finished"
    assert_files_match_disk(recording, services.settings.recordings_dir)

    second = VisitMedia(services, RoomRegistry(), quality_interval=None)  # after the restart
    visitor, kiosk = TestPeer("visitor-again", clip), TestPeer("kiosk-again", clip)
    try:
        await join(second, visit_id, "visitor", visitor)
        await join(second, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        await kiosk.received_media("video").wait_for_frames(30, within=10)
        back_at = loop.time()

        async def connected_again() -> bool:
            return (await get_visit(services, visit_id)).visitor_connected_s > first_connected

        await eventually(connected_again)  # media flows: connected time counts again
        await media_terminates(second, visit_id, world)
    finally:
        await second.close()
        await visitor.close()
        await kiosk.close()
    visit = await get_visit(services, visit_id)
    assert visit.state == "terminated"
    assert visit.visitor_connected_s > first_connected  # both calls count
    # From the stop to the media's return (the second join took about a second of that).
    downtime = back_at - stopped_at
    for lost in (visit.visitor_lost_s, visit.kiosk_lost_s):
        assert downtime - 2.0 <= lost <= downtime + 1.0, (lost, downtime)
    assert visit.ledger_at is None  # the end closed the call's ledger
    recordings = await recordings_of(services, visit_id)
    assert [r.directory for r in recordings] == [f"visit-{visit_id}", f"visit-{visit_id}-2"]
    assert all(r.state == "finished" for r in recordings)


async def media_terminates(media: VisitMedia, visit_id: int, world: World) -> None:
    await media.terminate(visit_id, staff(world, "officer_a"), "end of the resumed call")
    await media.wait_settled(visit_id)
