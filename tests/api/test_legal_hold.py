"""A facility administrator puts a recorded visit on legal hold with a reason: it shows in search
and playback, the real retention purge passes it by long after its purge date, the evidence
export says it was held, and lifting the hold deletes nothing at once. Frozen on Monday
4 January 2027 (the recording is kept 30 days)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.api.booking_support import Client, code
from tests.factories import ApiUser, World, add_visit, started_visit
from tests.recording_support import record_visit
from tests.store_helpers import ManualClock
from vvserver.db.models import AuditEntry, Recording
from vvserver.domain.services import Services
from vvserver.scheduling.loop import scheduler_pass

REASON = "Subpoena 2027-114 (District Court)"


async def recording_row(services: Services, recording_id: int) -> Recording:
    async with services.read() as s:
        row = await s.get(Recording, recording_id)
        assert row is not None
        return row


async def audit_of(services: Services, action: str) -> list[AuditEntry]:
    async with services.read() as s:
        rows = await s.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return list(rows)


async def hold(user: ApiUser, visit_id: int, reason: str = REASON) -> tuple[int, Any]:
    resp = await user.post(f"/api/visits/{visit_id}/hold", json={"reason": reason})
    return resp.status, await resp.json()


async def test_a_held_recording_survives_the_purge_and_lifting_deletes_nothing_at_once(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visit_id = await started_visit(services, world, started_ago=timedelta(minutes=40))
    recording_id = await record_visit(services, visit_id)
    directory = services.settings.recordings_dir / f"visit-{visit_id}"
    purge_date = (await recording_row(services, recording_id)).purge_after
    assert purge_date == clock.now() + timedelta(days=30)

    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    status, placed = await hold(admin, visit_id)
    assert status == 201, placed
    assert (placed["active"], placed["reason"], placed["placed_by"]) == (True, REASON, "Admin A")
    [audited] = await audit_of(services, "recording.hold")
    assert (audited.actor, audited.outcome) == (
        f"facility_admin:{world.accounts['admin_a']}",
        "success",
    )
    assert audited.details["reason"] == REASON
    assert audited.details["recordings"] == [recording_id]
    assert audited.target == f"visit:{visit_id}"
    status, body = await hold(admin, visit_id)
    assert (status, code(body)) == (409, "hold_exists")

    # Officers see the hold in search and playback, and cannot place or lift one.
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    [item] = (await (await officer.get("/api/recordings")).json())["items"]
    assert item["legal_hold"] is True
    held_only = await (await officer.get("/api/recordings?legal_hold=false")).json()
    assert held_only["total"] == 0
    playback = await (await officer.get(f"/api/visits/{visit_id}/recording")).json()
    assert playback["legal_hold"] is True
    assert playback["holds"][0]["reason"] == REASON
    assert (await hold(officer, visit_id))[0] == 403
    lift = await officer.post(f"/api/visits/{visit_id}/hold/lift", json={"reason": "done"})
    assert lift.status == 403
    other_facility = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await hold(other_facility, visit_id))[0] == 404

    # Long past its purge date, the real purge job passes it by.
    clock.moment = purge_date + timedelta(days=100)
    report = await scheduler_pass(services, clock.now())
    assert report.recordings_purged == 0
    row = await recording_row(services, recording_id)
    assert (row.state, row.purged_at, row.legal_hold) == ("finished", None, True)
    assert any(directory.iterdir())

    # The evidence export says it was under hold, and by whom and why.
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])  # a new day, a new session
    resp = await admin.get(f"/api/visits/{visit_id}/evidence.zip")
    assert resp.status == 200, await resp.text()
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["legal_hold"]["under_hold"] is True
    assert manifest["legal_hold"]["holds"][0]["reason"] == REASON
    assert manifest["legal_hold"]["holds"][0]["placed_by"] == "Admin A"
    assert manifest["recordings"][0]["legal_hold"] is True

    # Lifting deletes nothing now: the purge comes on its schedule, a grace period later.
    resp = await admin.post(f"/api/visits/{visit_id}/hold/lift", json={"reason": "Case closed"})
    assert resp.status == 200, await resp.text()
    lifted = await resp.json()
    assert (lifted["active"], lifted["lift_reason"], lifted["lifted_by"]) == (
        False,
        "Case closed",
        "Admin A",
    )
    grace = timedelta(days=services.settings.hold_release_grace_days)
    assert (await scheduler_pass(services, clock.now())).recordings_purged == 0
    row = await recording_row(services, recording_id)
    assert (row.legal_hold, row.purge_after, row.state) == (False, clock.now() + grace, "finished")
    [lift_audit] = await audit_of(services, "recording.hold_lift")
    assert lift_audit.details["reason"] == "Case closed"
    assert lift_audit.details["purge_delayed"] == [recording_id]

    clock.moment += grace
    assert (await scheduler_pass(services, clock.now())).recordings_purged == 1
    assert (await recording_row(services, recording_id)).state == "purged"
    assert not directory.exists()
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    status, body = await hold(admin, visit_id)
    assert (status, code(body)) == (409, "recording_purged")
    history = await (await admin.get(f"/api/visits/{visit_id}/holds")).json()
    assert [h["active"] for h in history] == [False]


async def test_nothing_to_hold_on_privileged_or_unrecorded_visits(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    privileged = await started_visit(
        services, world, started_ago=timedelta(minutes=40), privileged=True
    )
    status, body = await hold(admin, privileged)
    assert (status, code(body)) == (409, "privileged_not_recorded")
    [refused] = await audit_of(services, "recording.hold")
    assert (refused.outcome, refused.details["code"]) == ("failure", "privileged_not_recorded")

    upcoming = await add_visit(services, world)
    status, body = await hold(admin, upcoming)
    assert (status, code(body)) == (409, "no_recording")
    lift = await admin.post(f"/api/visits/{upcoming}/hold/lift", json={"reason": "nothing"})
    assert (lift.status, code(await lift.json())) == (409, "no_hold")
    status, body = await hold(admin, upcoming, reason="")
    assert status == 422
    assert (await hold(admin, 999_999))[0] == 404
