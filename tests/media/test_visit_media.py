"""A visit's call from the database's point of view: the visit goes live when both sides are
connected, the server's clock completes it, the recording lands in its row, officers watch
(audited) except on privileged visits, and terminate hangs everybody up."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import World
from tests.media.conftest import Resources
from tests.media.test_recording import write_clip_log
from vvserver.db.models import AuditEntry, Kiosk, Recording, Visit, VisitTransition
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.principal import Principal
from vvserver.media.events import Role, VisitEnded
from vvserver.media.registry import RoomRegistry
from vvserver.media.remux import finalize_recording
from vvserver.media.sample_clip import Clip
from vvserver.media.test_peer import PeerSection, TestPeer
from vvserver.services import Services
from vvserver.visits_live import VisitMedia, adopt_recovered_recordings
from vvserver.visits_live.ledger import ConnectionLedger

MONITOR_SECTIONS = (
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
)


@pytest.fixture
async def media(services: Services) -> AsyncIterator[VisitMedia]:
    visit_media = VisitMedia(services, RoomRegistry(), quality_interval=1.0)
    yield visit_media
    await visit_media.close()


async def add_visit(
    services: Services,
    world: World,
    *,
    ends_in: float,
    started: timedelta = timedelta(minutes=1),
    kiosk: str = "a1-1",
    person: str = "pa1",
    state: str = "ready",
    privileged: bool = False,
) -> int:
    """A visit that started `started` ago (or starts later, if negative) and ends soon."""
    now = services.clock.now()
    async with services.write() as s:
        device = await s.get(Kiosk, world.kiosks[kiosk])
        assert device is not None
        visit = Visit(
            facility_id=device.facility_id,
            unit_id=device.unit_id,
            kiosk_id=device.id,
            person_id=world.persons[person],
            visitor_id=world.accounts["visitor"],
            start_at=now - started,
            end_at=now + timedelta(seconds=ends_in),
            state=state,
            privileged=privileged,
            minors=[],
            counts_toward_limit=True,
            created_at=now,
            updated_at=now,
        )
        s.add(visit)
        await s.flush()
        return visit.id


def staff(world: World, key: str) -> Principal:
    role, facility = {
        "officer_a": ("officer", world.facility_a),
        "officer_b": ("officer", world.facility_b),
        "agency_admin": ("agency_admin", None),
        "admin_c": ("facility_admin", world.facility_c),
    }[key]
    agency = world.other_agency_id if key == "admin_c" else world.agency_id
    return Principal(
        role=role,  # type: ignore[arg-type]
        account_id=world.accounts[key],
        agency_id=agency,
        facility_id=facility,
    )


async def get_visit(services: Services, visit_id: int) -> Visit:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return visit


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def visit_is(services: Services, visit_id: int, state: str) -> None:
    async def check() -> bool:
        return (await get_visit(services, visit_id)).state == state

    await eventually(check)


async def audits(
    services: Services, visit_id: int
) -> list[tuple[str, str, str, dict[str, object]]]:
    async with services.read() as s:
        entries = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"visit:{visit_id}")
            .order_by(AuditEntry.seq)
        )
        return [(e.actor, e.action, e.outcome, e.details) for e in entries]


async def recordings_of(services: Services, visit_id: int) -> list[Recording]:
    async with services.read() as s:
        rows = await s.scalars(select(Recording).where(Recording.visit_id == visit_id))
        return list(rows)


async def join(media: VisitMedia, visit_id: int, role: Role, peer: TestPeer) -> None:
    await peer.connect(lambda offer: media.join(visit_id, role, offer))
    await peer.wait_connected(within=10)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_files_match_disk(recording: Recording, root: Path) -> None:
    directory = root / recording.directory
    for entry in recording.files:
        path = directory / entry["name"]
        assert entry["sha256"] == sha256_of(path), entry
        assert entry["size"] == path.stat().st_size
    listed = json.loads((directory / "manifest.json").read_text())["files"]
    media_entries = [f for f in recording.files if f["kind"] == "media"]
    assert [f["name"] for f in listed] == [f["name"] for f in media_entries]


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
    [recording] = await recordings_of(services, visit_id)
    assert recording.state == "finished"
    assert_files_match_disk(recording, services.settings.recordings_dir)

    second = VisitMedia(services, RoomRegistry(), quality_interval=None)  # after the restart
    visitor, kiosk = TestPeer("visitor-again", clip), TestPeer("kiosk-again", clip)
    try:
        await join(second, visit_id, "visitor", visitor)
        await join(second, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")
        await media_terminates(second, visit_id, world)
    finally:
        await second.close()
        await visitor.close()
        await kiosk.close()
    visit = await get_visit(services, visit_id)
    assert visit.state == "terminated"
    assert visit.visitor_connected_s > first_connected  # both calls count
    recordings = await recordings_of(services, visit_id)
    assert [r.directory for r in recordings] == [f"visit-{visit_id}", f"visit-{visit_id}-2"]
    assert all(r.state == "finished" for r in recordings)


async def media_terminates(media: VisitMedia, visit_id: int, world: World) -> None:
    await media.terminate(visit_id, staff(world, "officer_a"), "end of the resumed call")
    await media.wait_settled(visit_id)


async def test_staff_outside_the_visits_facility_get_not_found(
    services: Services, world: World, media: VisitMedia
) -> None:
    visit_id = await add_visit(services, world, ends_in=600.0)
    visitor_principal = Principal(role="visitor", account_id=world.accounts["visitor"])
    for outsider in (staff(world, "officer_b"), staff(world, "admin_c"), visitor_principal):
        with pytest.raises(NotFound):
            await media.monitor(visit_id, outsider, "v=0")
        with pytest.raises(NotFound):
            await media.stop_monitor(visit_id, outsider)
        with pytest.raises(NotFound):
            await media.terminate(visit_id, outsider, "not yours")
        with pytest.raises(NotFound):
            await media.quality(visit_id, outsider)
    with pytest.raises(NotFound):
        await media.monitor(visit_id + 1000, staff(world, "officer_a"), "v=0")
    assert media.rooms.get(visit_id) is None  # nothing was opened for them
    assert (await get_visit(services, visit_id)).state == "ready"
    assert await audits(services, visit_id) == []
    # the agency's administrator reaches every facility of the agency
    quality = await media.quality(visit_id, staff(world, "agency_admin"))
    assert not quality.call_open


async def test_terminating_a_visit_without_a_call_only_changes_its_state(
    services: Services, world: World, media: VisitMedia
) -> None:
    visit_id = await add_visit(
        services, world, ends_in=7200.0, started=-timedelta(hours=1), state="scheduled"
    )
    admin = staff(world, "agency_admin")
    await media.terminate(visit_id, admin, "visitor banned for contraband")
    visit = await get_visit(services, visit_id)
    assert (visit.state, visit.end_reason) == ("terminated", "visitor banned for contraband")
    assert [a[:3] for a in await audits(services, visit_id)] == [
        (admin.actor, "visit.terminate", "success")
    ]
    with pytest.raises(Conflict):  # already over
        await media.terminate(visit_id, admin, "again")
    assert await recordings_of(services, visit_id) == []


async def test_joining_a_visit_that_is_not_on_is_refused(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    cancelled = await add_visit(services, world, ends_in=600.0, state="cancelled")
    over = await add_visit(services, world, ends_in=-1.0, started=timedelta(minutes=31))
    early = await add_visit(
        services, world, ends_in=7200.0, started=-timedelta(hours=1), state="scheduled"
    )
    open_visit = await add_visit(services, world, ends_in=600.0, kiosk="a2-1", person="pa2")
    peer = TestPeer("visitor", clip)
    try:
        offer = await peer.create_offer()
        for visit_id, code in (
            (cancelled, "visit_not_active"),
            (over, "visit_over"),
            (early, "visit_not_open_yet"),
        ):
            roles: tuple[Role, ...] = ("visitor", "kiosk")
            for role in roles:
                with pytest.raises(Conflict) as caught:
                    await media.join(visit_id, role, offer)
                assert caught.value.code == code
            assert media.rooms.get(visit_id) is None
        with pytest.raises(InvalidInput) as bad:
            await media.join(open_visit, "visitor", "v=0 not an offer")
        assert bad.value.code == "offer_malformed"
        with pytest.raises(InvalidInput):
            await media.join(open_visit, "officer", offer)  # type: ignore[arg-type]
    finally:
        await peer.close()
    assert (await get_visit(services, open_visit)).visitor_joined_at is None
    assert await recordings_of(services, cancelled) == []


async def test_recordings_a_crash_left_behind_are_adopted_at_start_up(
    services: Services, world: World, clip: Clip
) -> None:
    root = services.settings.recordings_dir
    ended = await add_visit(services, world, ends_in=-60.0, started=timedelta(minutes=31))
    running = await add_visit(services, world, ends_in=600.0, kiosk="a2-1", person="pa2")
    logs_left, recovered, empty = root / "visit-1", root / "visit-2", root / "visit-3"
    for directory in (logs_left, recovered, empty):
        directory.mkdir()
    write_clip_log(logs_left / "visitor-001.vvlog", clip, 2.0)
    write_clip_log(recovered / "visitor-001.vvlog", clip, 1.0)
    finalize_recording(recovered)  # as recover_recordings does at start-up
    interrupted_at = services.clock.now() - timedelta(minutes=5)
    rows: dict[str, int] = {}
    async with services.write() as s:
        for key, directory, state, visit_id in (
            ("logs_left", logs_left, "interrupted", ended),
            ("recovered", recovered, "interrupted", ended),
            ("empty", empty, "interrupted", ended),
            ("in_call", root / "visit-4", "recording", running),
        ):
            recording = Recording(
                visit_id=visit_id,
                facility_id=world.facility_a,
                directory=directory.name,
                files=[],
                state=state,
                legal_hold=False,
                created_at=interrupted_at - timedelta(minutes=20),
                finished_at=interrupted_at if state == "interrupted" else None,
            )
            s.add(recording)
            await s.flush()
            rows[key] = recording.id

    assert await adopt_recovered_recordings(services) == 3
    assert await adopt_recovered_recordings(services) == 0  # idempotent

    found: dict[str, Recording] = {}
    async with services.read() as s:
        for key, row_id in rows.items():
            row = await s.get(Recording, row_id)
            assert row is not None
            found[key] = row
    for key in ("logs_left", "recovered", "empty"):
        recording = found[key]
        assert recording.state == "finished"
        assert recording.finished_at == interrupted_at
        assert recording.purge_after == interrupted_at + timedelta(days=90)
    for key, seconds in (("logs_left", 2.0), ("recovered", 1.0)):
        recording = found[key]
        [webm] = [f for f in recording.files if f["kind"] == "media"]
        assert webm["name"] == "visitor-001.webm"
        assert abs(webm["duration_s"] - seconds) <= 0.1
        assert_files_match_disk(recording, root)
    assert not list(logs_left.glob("*.vvlog"))
    assert found["empty"].files == []
    assert (found["in_call"].state, found["in_call"].files) == ("recording", [])


def test_the_ledger_counts_connected_and_lost_time_from_the_first_connection() -> None:
    t0 = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    ledger = ConnectionLedger()
    ledger.disconnected("kiosk", at(0))  # never connected: nothing lost
    ledger.connected("visitor", at(10))
    ledger.connected("kiosk", at(20))
    assert ledger.both_connected
    first = ledger.checkpoint(at(30))
    assert (first["visitor"].connected_s, first["kiosk"].connected_s) == (20.0, 10.0)
    ledger.disconnected("kiosk", at(40))
    ledger.connected("kiosk", at(40))  # a duplicate event changes nothing
    ledger.disconnected("kiosk", at(40))
    assert not ledger.both_connected
    ledger.connected("kiosk", at(70))
    ledger.disconnected("visitor", at(80))
    last = ledger.finish(at(100))
    assert (last["visitor"].connected_s, last["visitor"].lost_s) == (50.0, 20.0)
    assert (last["kiosk"].connected_s, last["kiosk"].lost_s) == (40.0, 30.0)
    assert ledger.finish(at(200))["kiosk"].connected_s == 0.0
