"""Who may reach a visit's call and when; recordings a crash left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.factories import World, add_visit
from tests.media.test_recording import write_clip_log
from tests.media.visit_media_support import (
    assert_files_match_disk,
    audits,
    get_visit,
    recordings_of,
    staff,
)
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.db.models import Recording
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import Conflict, InvalidInput, NotFound
from vvserver.domain.services import Services
from vvserver.media.remux import finalize_recording
from vvserver.media.room_events import Role
from vvserver.media.room_registry import RoomRegistry
from vvserver.visits_live import VisitMedia, adopt_recovered_recordings


@pytest.fixture
async def media(services: Services) -> AsyncIterator[VisitMedia]:
    visit_media = VisitMedia(services, RoomRegistry(), quality_interval=1.0)
    yield visit_media
    await visit_media.close()


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
    # Visit now: a visit that still rings has no call until it is answered.
    ringing = await add_visit(services, world, ends_in=900.0, started=timedelta(0), state="ringing")
    peer = TestPeer("visitor", clip)
    try:
        offer = await peer.create_offer()
        for visit_id, code in (
            (cancelled, "visit_not_active"),
            (over, "visit_over"),
            (early, "visit_not_open_yet"),
            (ringing, "ring_not_answered"),
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
        assert media.rooms.get(open_visit) is None  # garbage opens nothing
        without_vp8 = offer.replace("VP8", "XYZ8")
        with pytest.raises(InvalidInput) as unsupported:
            await media.join(open_visit, "kiosk", without_vp8)
        assert unsupported.value.code == "offer_unsupported_codec"
        with pytest.raises(InvalidInput):
            await media.join(open_visit, "officer", offer)  # type: ignore[arg-type]
    finally:
        await peer.close()
    assert (await get_visit(services, open_visit)).visitor_joined_at is None
    assert await recordings_of(services, cancelled) == []
    assert await recordings_of(services, open_visit) == []


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
