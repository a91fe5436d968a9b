"""A booked visit changes: the visitor cancels or moves it, staff do with a reason, join links die
when replaced, and the calendar file is valid. Frozen on Monday 4 January 2027, 07:00 New York."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.api.booking_support import (
    TUE_10,
    TUE_11,
    TUE_1030,
    Client,
    book,
    code,
    slot_starts,
)
from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, set_rules
from vvserver.db.models import (
    AuditEntry,
    Notification,
    Person,
    Visit,
)
from vvserver.domain.errors import Forbidden
from vvserver.domain.notices.ics import unfold
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import verify_join


async def test_visitor_cancels_then_staff_cancel_with_a_reason(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    _, visit = await book(visitor, pa1, TUE_10)
    resp = await visitor.post(f"/api/visits/{visit['id']}/cancel", json={})
    assert resp.status == 200, await resp.text()
    cancelled = await resp.json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["end_reason"] == "cancelled by the visitor"
    assert TUE_10 in await slot_starts(visitor, pa1, "2027-01-05")
    resp = await visitor.post(f"/api/visits/{visit['id']}/cancel", json={})
    assert (resp.status, code(await resp.json())) == (409, "visit_not_active")

    await set_rules(services, world.facility_a, cancel_lead_minutes=24 * 60)
    _, soon = await book(visitor, pa1, "2027-01-04T20:00:00-05:00")  # 13 hours away
    resp = await visitor.post(f"/api/visits/{soon['id']}/cancel", json={})
    assert (resp.status, code(await resp.json())) == (409, "too_late_to_cancel")
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert (await visitor2.post(f"/api/visits/{soon['id']}/cancel", json={})).status == 404
    officer_b = await ApiUser.sign_in(client, world.emails["officer_b"])
    resp = await officer_b.post(f"/api/visits/{soon['id']}/cancel", json={"reason": "x"})
    assert resp.status == 404

    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(f"/api/visits/{soon['id']}/cancel", json={})
    assert (resp.status, code(await resp.json())) == (422, "reason_required")
    resp = await officer.post(f"/api/visits/{soon['id']}/cancel", json={"reason": "lockdown"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["end_reason"] == "lockdown"
    async with services.read() as s:
        mail = (
            await s.execute(select(Notification).where(Notification.kind == "visit_cancelled"))
        ).scalar_one()
        audits = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "visit.cancel"))
        ).scalars()
        outcomes = sorted((a.outcome, a.actor) for a in audits)
    assert mail.to_email == world.emails["visitor"]
    assert "lockdown" in mail.body
    assert mail.ics is not None
    assert "STATUS:CANCELLED" in mail.ics
    officer_a, officer_b_actor = (
        f"officer:{world.accounts['officer_a']}",
        f"officer:{world.accounts['officer_b']}",
    )
    assert outcomes == [
        ("failure", officer_a),
        ("failure", officer_b_actor),
        ("success", officer_a),
    ]


async def test_rescheduling_moves_the_visit_without_counting_it_twice(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    # One visit a week: moving it must not count as a second one.
    await set_rules(services, world.facility_a, max_visits_per_person_week=1)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    _, old = await book(visitor, world.persons["pa1"], TUE_10)

    resp = await visitor.post(f"/api/visits/{old['id']}/reschedule", json={"start": TUE_1030})
    assert resp.status == 201, await resp.text()
    new = await resp.json()
    assert new["id"] != old["id"]
    assert new["start"] == TUE_1030
    assert new["join_url"] != old["join_url"]
    gone = await (await visitor.get(f"/api/visits/{old['id']}")).json()
    assert (gone["state"], gone["end_reason"]) == ("cancelled", "rescheduled")
    # The week's one visit is the moved one: nothing else is bookable that week.
    assert await slot_starts(visitor, world.persons["pa1"], "2027-01-05") == []
    async with services.read() as s:
        stored = await s.get(Visit, old["id"])
        assert stored is not None
        assert stored.join_token_hash is None
        mail = (
            await s.execute(select(Notification).where(Notification.kind == "visit_rescheduled"))
        ).scalar_one()
    assert new["join_url"] in mail.body
    resp = await visitor.post(f"/api/visits/{old['id']}/reschedule", json={"start": TUE_11})
    assert (resp.status, code(await resp.json())) == (409, "visit_not_active")
    # A refused move changes nothing.
    resp = await visitor.post(
        f"/api/visits/{new['id']}/reschedule", json={"start": "2027-01-05T11:05:00-05:00"}
    )
    assert (resp.status, code(await resp.json())) == (422, "not_a_slot")
    still = await (await visitor.get(f"/api/visits/{new['id']}")).json()
    assert still["state"] == "scheduled"
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    resp = await visitor2.post(f"/api/visits/{new['id']}/reschedule", json={"start": TUE_11})
    assert resp.status == 404


async def test_staff_move_a_visit_at_any_time_with_a_reason_the_visitor_is_told(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(services, world.facility_a, cancel_lead_minutes=48 * 60)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    _, old = await book(visitor, world.persons["pa1"], TUE_10)
    # Inside the visitor's lead time, only staff may still move it.
    resp = await visitor.post(f"/api/visits/{old['id']}/reschedule", json={"start": TUE_1030})
    assert (resp.status, code(await resp.json())) == (409, "too_late_to_reschedule")
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(f"/api/visits/{old['id']}/reschedule", json={"start": TUE_1030})
    assert (resp.status, code(await resp.json())) == (422, "reason_required")
    other_officer = await ApiUser.sign_in(client, world.emails["officer_b"])
    resp = await other_officer.post(
        f"/api/visits/{old['id']}/reschedule", json={"start": TUE_1030, "reason": "lockdown"}
    )
    assert resp.status == 404
    resp = await officer.post(
        f"/api/visits/{old['id']}/reschedule",
        json={"start": TUE_1030, "reason": "unit lockdown at 10:00"},
    )
    assert resp.status == 201, await resp.text()
    moved = await resp.json()
    assert moved["start"] == TUE_1030
    assert moved["join_url"] is None  # staff never see the visitor's link
    gone = await (await visitor.get(f"/api/visits/{old['id']}")).json()
    assert gone["state"] == "cancelled"
    assert "unit lockdown at 10:00" in gone["end_reason"]
    async with services.read() as s:
        mail = (
            await s.execute(select(Notification).where(Notification.kind == "visit_rescheduled"))
        ).scalar_one()
        audited = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "visit.reschedule"))
        ).scalar_one()
    assert mail.to_email == world.emails["visitor"]
    assert "unit lockdown at 10:00" in mail.body
    assert "/join/" in mail.body
    assert audited.target == f"visit:{old['id']}"


async def test_join_links_die_when_replaced_rescheduled_or_cancelled(
    client: Client, services: Services, world: World
) -> None:
    """Runs on the real clock: join tokens are also checked against the system time."""
    real = ManualClock(datetime.now(UTC).replace(second=0, microsecond=0))
    services.clock = real
    # Links open two hours ahead, so the next slots' links all work right now.
    await set_rules(services, world.facility_a, join_window_minutes=120)
    first_slot = real.moment + timedelta(minutes=5 + (-real.moment.minute - 5) % 30)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    status, visit = await book(visitor, world.persons["pa1"], first_slot.isoformat())
    assert status == 201, visit
    booked = token_of(visit)
    assert (await verify_join(services, booked)).id == visit["id"]

    resp = await visitor.post(f"/api/visits/{visit['id']}/join-link")
    assert resp.status == 200, await resp.text()
    reissued = token_of(await resp.json())
    assert reissued != booked
    await refused(services, booked, "join_link_revoked")
    assert (await verify_join(services, reissued)).id == visit["id"]
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert (await visitor2.post(f"/api/visits/{visit['id']}/join-link")).status == 404

    later = (first_slot + timedelta(minutes=30)).isoformat()
    resp = await visitor.post(f"/api/visits/{visit['id']}/reschedule", json={"start": later})
    assert resp.status == 201, await resp.text()
    moved = await resp.json()
    await refused(services, reissued, "join_link_revoked")
    assert (await verify_join(services, token_of(moved))).id == moved["id"]

    assert (await visitor.post(f"/api/visits/{moved['id']}/cancel", json={})).status == 200
    await refused(services, token_of(moved), "join_link_revoked")
    await refused(services, "not.a.token", "join_link_invalid")
    resp = await visitor.post(f"/api/visits/{moved['id']}/join-link")
    assert (resp.status, code(await resp.json())) == (409, "visit_not_active")


def token_of(visit: Any) -> str:
    return str(visit["join_url"]).rsplit("/", 1)[1]


async def refused(services: Services, token: str, error: str) -> None:
    with pytest.raises(Forbidden) as caught:
        await verify_join(services, token)
    assert caught.value.code == error


async def test_the_calendar_file_is_valid_icalendar_in_utc(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    async with services.write() as s:
        await s.execute(
            update(Person)
            .where(Person.id == world.persons["pa1"])
            .values(last_name='Doe, Jr.; "Tee"')
        )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    _, visit = await book(visitor, world.persons["pa1"], TUE_10)
    resp = await visitor.get(f"/api/visits/{visit['id']}/calendar.ics")
    assert resp.status == 200
    assert resp.content_type == "text/calendar"
    raw = (await resp.read()).decode()
    physical = raw.split("\r\n")
    assert physical[-1] == ""
    assert all(len(line.encode()) <= 75 for line in physical)
    assert "\n" not in raw.replace("\r\n", "")
    lines = unfold(raw)
    assert lines[0] == "BEGIN:VCALENDAR"
    assert lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines
    assert "DTSTART:20270105T150000Z" in lines
    assert "DTEND:20270105T153000Z" in lines
    assert f"UID:visit-{visit['id']}@127.0.0.1" in lines
    assert "DTSTAMP:20270104T120000Z" in lines
    assert 'SUMMARY:Video visit with PA1 Doe\\, Jr.\\; "Tee"' in lines
    description = next(line for line in lines if line.startswith("DESCRIPTION:"))
    assert "\\nLocal time: Tuesday 05 January 2027\\, 10:00 to 10:30" in description
    assert "/join/" not in raw  # the link is only in the visitor's e-mail
    officer_b = await ApiUser.sign_in(client, world.emails["officer_b"])
    assert (await officer_b.get(f"/api/visits/{visit['id']}/calendar.ics")).status == 404
