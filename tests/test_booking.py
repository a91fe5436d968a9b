"""A family books, changes and cancels video visits; staff cancel with a reason; the kiosk sees
its day. The clock is frozen on Monday 4 January 2027, 07:00 in New York (facility A)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, set_rules
from vvserver.db.models import (
    Account,
    Approval,
    AuditEntry,
    Blackout,
    Kiosk,
    Notification,
    Person,
    Visit,
    VisitorBan,
    VisitTransition,
)
from vvserver.domain.errors import Forbidden
from vvserver.domain.join_links import verify_join
from vvserver.domain.secrets import token_hash
from vvserver.notify.ics import unfold
from vvserver.services import Services

Client = TestClient[web.Request, web.Application]

TUE_10 = "2027-01-05T10:00:00-05:00"
TUE_1030 = "2027-01-05T10:30:00-05:00"
TUE_11 = "2027-01-05T11:00:00-05:00"
WED_10 = "2027-01-06T10:00:00-05:00"


async def approve(services: Services, visitor_id: int, person_id: int, **extra: Any) -> None:
    async with services.write() as s:
        person = await s.get(Person, person_id)
        assert person is not None
        s.add(
            Approval(
                person_id=person_id,
                visitor_id=visitor_id,
                facility_id=person.facility_id,
                status=extra.pop("status", "approved"),
                relationship="friend",
                professional=extra.pop("professional", "none"),
                created_at=services.clock.now(),
                **extra,
            )
        )


async def book(user: ApiUser, person_id: int, start: str, **extra: Any) -> tuple[int, Any]:
    resp = await user.post("/api/visits", json={"person_id": person_id, "start": start, **extra})
    return resp.status, await resp.json()


def code(body: Any) -> str:
    return str(body["error"]["code"])


async def slot_starts(user: ApiUser, person_id: int, day: str) -> list[str]:
    resp = await user.get(f"/api/persons/{person_id}/availability?from={day}&to={day}")
    assert resp.status == 200, await resp.text()
    return [slot["start"] for slot in (await resp.json())["slots"]]


async def test_visitor_books_a_slot_gets_a_join_link_and_the_slot_is_gone(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    assert TUE_10 in await slot_starts(visitor, pa1, "2027-01-05")

    status, visit = await book(
        visitor, pa1, TUE_10, minors=[{"name": "Lily", "date_of_birth": "2015-06-01"}]
    )
    assert status == 201, visit
    assert visit["join_url"].startswith("http://127.0.0.1:8080/join/")
    assert visit["state"] == "scheduled"
    assert visit["person_name"] == "PA1 Doe"
    assert visit["facility_name"] == "Demo County Jail"
    assert visit["timezone"] == "America/New_York"
    assert visit["unit_name"] == "A1"
    assert visit["kiosk_id"] == world.kiosks["a1-1"]  # the lowest free kiosk
    assert (visit["start"], visit["end"]) == (TUE_10, "2027-01-05T10:30:00-05:00")
    assert (visit["start_utc"], visit["end_utc"]) == (
        "2027-01-05T15:00:00Z",
        "2027-01-05T15:30:00Z",
    )
    assert visit["privileged"] is False
    assert visit["recorded"] is True
    assert "monitored and recorded" in visit["monitoring_notice"]
    assert visit["minors"] == [{"name": "Lily", "date_of_birth": "2015-06-01"}]

    assert TUE_10 not in await slot_starts(visitor, pa1, "2027-01-05")
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert TUE_10 not in await slot_starts(officer, pa1, "2027-01-05")
    # The link is shown once: the visit only keeps its hash, and it is not in later reads.
    token = visit["join_url"].rsplit("/", 1)[1]
    again = await (await visitor.get(f"/api/visits/{visit['id']}")).json()
    assert "join_url" not in again
    async with services.read() as s:
        stored = await s.get(Visit, visit["id"])
        assert stored is not None
        assert stored.join_token_hash == token_hash(token)
        created = (await s.execute(select(VisitTransition))).scalar_one()
        assert (created.from_state, created.to_state) == (None, "scheduled")
        assert created.actor == f"visitor:{world.accounts['visitor']}"
        mail = (await s.execute(select(Notification))).scalar_one()
    assert mail.kind == "visit_booked"
    assert mail.to_email == world.emails["visitor"]
    assert visit["join_url"] in mail.body
    assert "monitored and recorded" in mail.body
    assert mail.ics is not None
    assert "BEGIN:VCALENDAR" in mail.ics
    assert "DTSTART:20270105T150000Z" in mail.ics
    assert f"URL:{visit['join_url']}" in unfold(mail.ics)


async def test_attorney_visits_are_privileged_and_not_recorded(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    lawyer = world.accounts["visitor2"]
    await approve(services, lawyer, world.persons["pa2"], professional="attorney", bar_number="1")
    user = await ApiUser.sign_in(client, world.emails["visitor2"])
    status, visit = await book(user, world.persons["pa2"], TUE_10)
    assert status == 201, visit
    assert visit["privileged"] is True
    assert visit["recorded"] is False
    assert "not monitored or recorded" in visit["monitoring_notice"]


async def test_taken_off_grid_early_and_late_slots_are_refused_with_a_reason(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    now = clock.now()
    async with services.write() as s:
        # A second person in unit A2, which has a single kiosk.
        neighbour = Person(
            agency_id=world.agency_id,
            facility_id=world.facility_a,
            unit_id=world.unit_a2,
            booking_number="A-1003",
            first_name="Sam",
            last_name="Roe",
            status="active",
            created_at=now,
        )
        s.add(neighbour)
        await s.flush()
        neighbour_id = neighbour.id
    await approve(services, world.accounts["visitor"], world.persons["pa2"])
    await approve(services, world.accounts["visitor2"], neighbour_id)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    pa1 = world.persons["pa1"]

    assert (await book(visitor, world.persons["pa2"], TUE_10))[0] == 201
    status, body = await book(visitor2, neighbour_id, TUE_10)
    assert (status, code(body)) == (409, "slot_taken")
    assert TUE_10 not in await slot_starts(visitor2, neighbour_id, "2027-01-05")

    status, body = await book(visitor, pa1, "2027-01-05T10:10:00-05:00")
    assert (status, code(body)) == (422, "not_a_slot")
    status, body = await book(visitor, pa1, "2027-01-05T10:00:00")  # no offset
    assert status == 422
    status, body = await book(visitor, pa1, "2027-01-04T06:30:00-05:00")  # already past
    assert (status, code(body)) == (409, "outside_booking_window")
    status, body = await book(visitor, pa1, "2027-01-19T10:00:00-05:00")  # beyond 14 days
    assert (status, code(body)) == (409, "outside_booking_window")

    assert (await book(visitor, pa1, TUE_11))[0] == 201
    status, body = await book(visitor2, pa1, TUE_11)
    assert (status, code(body)) == (409, "person_busy")
    # Facility B is in Chicago: 10:00 there is 11:00 in New York, when the visitor is busy.
    status, body = await book(visitor, world.persons["pb1"], "2027-01-05T10:00:00-06:00")
    assert (status, code(body)) == (409, "visitor_busy")

    async with services.write() as s:
        s.add(
            Blackout(
                facility_id=world.facility_a,
                unit_id=world.unit_a1,
                starts_at=datetime(2027, 1, 6, 14, 0, tzinfo=UTC),
                ends_at=datetime(2027, 1, 6, 16, 0, tzinfo=UTC),
                reason="unit search",
                created_by=world.accounts["admin_a"],
                created_at=now,
            )
        )
    status, body = await book(visitor, pa1, WED_10)
    assert (status, code(body)) == (409, "blackout")
    async with services.write() as s:
        await s.execute(update(Person).where(Person.id == pa1).values(status="released"))
    status, body = await book(visitor, pa1, "2027-01-07T10:00:00-05:00")
    assert (status, code(body)) == (409, "person_unavailable")


async def test_weekly_limits_count_the_right_visits(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(
        services, world.facility_a, max_visits_per_person_week=2, max_visits_per_visitor_week=3
    )
    await approve(services, world.accounts["visitor"], world.persons["pa2"])
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    pa1, pa2 = world.persons["pa1"], world.persons["pa2"]
    async with services.write() as s:
        # A completed make-up visit for pa1 this week: credits never count.
        s.add(
            Visit(
                facility_id=world.facility_a,
                unit_id=world.unit_a1,
                kiosk_id=world.kiosks["a1-1"],
                person_id=pa1,
                visitor_id=world.accounts["visitor2"],
                start_at=datetime(2027, 1, 4, 11, 0, tzinfo=UTC),
                end_at=datetime(2027, 1, 4, 11, 30, tzinfo=UTC),
                state="completed",
                counts_toward_limit=True,
                makeup_for_visit_id=None,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        await s.flush()
        await s.execute(update(Visit).values(makeup_for_visit_id=Visit.id))

    assert (await book(visitor, pa1, TUE_10))[0] == 201
    assert (await book(visitor, pa1, TUE_11))[0] == 201
    status, body = await book(visitor2, pa1, WED_10)
    assert (status, code(body)) == (409, "person_weekly_limit")
    assert await slot_starts(visitor2, pa1, "2027-01-06") == []
    assert (await book(visitor2, pa1, "2027-01-11T10:00:00-05:00"))[0] == 201  # next week

    assert (await book(visitor, pa2, WED_10))[0] == 201
    status, body = await book(visitor, pa2, "2027-01-07T10:00:00-05:00")
    assert (status, code(body)) == (409, "visitor_weekly_limit")
    # The visitor cap is per facility: facility B has its own.
    assert (await book(visitor, world.persons["pb1"], "2027-01-07T10:00:00-06:00"))[0] == 201


async def test_unverified_unapproved_and_banned_visitors_are_refused(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    pa1 = world.persons["pa1"]
    await approve(services, world.accounts["newcomer"], pa1)
    newcomer = await ApiUser.sign_in(client, world.emails["newcomer"])
    status, body = await book(newcomer, pa1, TUE_10)
    assert (status, code(body)) == (403, "visitor_not_verified")
    async with services.write() as s:  # e-mail confirmed, ID still waiting for review
        await s.execute(
            update(Account)
            .where(Account.id == world.accounts["newcomer"])
            .values(email_verified_at=clock.now(), id_status="pending")
        )
    status, body = await book(newcomer, pa1, TUE_10)
    assert (status, code(body)) == (403, "visitor_not_verified")

    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    status, body = await book(visitor2, world.persons["pb1"], TUE_10)
    assert (status, code(body)) == (403, "not_approved")
    status, body = await book(visitor2, 987654, TUE_10)
    assert (status, code(body)) == (403, "not_approved")
    await approve(services, world.accounts["visitor2"], world.persons["pa2"], status="requested")
    status, body = await book(visitor2, world.persons["pa2"], TUE_10)
    assert (status, code(body)) == (403, "not_approved")

    async with services.write() as s:
        ban = VisitorBan(
            facility_id=world.facility_a,
            visitor_id=world.accounts["visitor2"],
            reason="contraband",
            ends_at=datetime(2027, 2, 1, tzinfo=UTC),
            created_by=world.accounts["admin_a"],
            created_at=clock.now(),
        )
        s.add(ban)
    status, body = await book(visitor2, pa1, TUE_10)
    assert (status, code(body)) == (403, "visitor_banned")
    async with services.write() as s:
        await s.execute(update(VisitorBan).values(lifted_at=clock.now()))
    assert (await book(visitor2, pa1, TUE_10))[0] == 201


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


async def test_the_kiosk_sees_todays_visits_with_visitor_first_names(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    async with services.write() as s:
        await s.execute(
            update(Account)
            .where(Account.id == world.accounts["visitor"])
            .values(name="Maria Lopez")
        )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    for start in ("2027-01-04T10:00:00-05:00", "2027-01-04T09:00:00-05:00", TUE_10):
        assert (await book(visitor, pa1, start))[0] == 201
    kiosk = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    resp = await client.get("/api/kiosk/schedule", headers=kiosk)
    assert resp.status == 200, await resp.text()
    day = await resp.json()
    assert (day["date"], day["kiosk_id"]) == ("2027-01-04", world.kiosks["a1-1"])
    assert [v["start"] for v in day["visits"]] == [
        "2027-01-04T09:00:00-05:00",
        "2027-01-04T10:00:00-05:00",
    ]
    assert {v["visitor_first_name"] for v in day["visits"]} == {"Maria"}
    assert "Lopez" not in await resp.text()
    other = {"Authorization": f"Bearer {world.kiosk_tokens['a1-2']}"}
    assert (await (await client.get("/api/kiosk/schedule", headers=other)).json())["visits"] == []
    assert (await visitor.get("/api/kiosk/schedule")).status == 403
    bad = {"Authorization": "Bearer k1.not-the-secret"}
    assert (await client.get("/api/kiosk/schedule", headers=bad)).status == 401
    async with services.write() as s:
        await s.execute(update(Kiosk).values(enabled=False))
    assert (await client.get("/api/kiosk/schedule", headers=kiosk)).status == 401


async def test_visit_lists_respect_scope_and_filters(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    _, tue = await book(visitor, world.persons["pa1"], TUE_10)
    _, wed = await book(visitor, world.persons["pa1"], WED_10)
    _, chicago = await book(visitor, world.persons["pb1"], "2027-01-05T23:30:00-06:00")
    await visitor.post(f"/api/visits/{wed['id']}/cancel", json={})

    mine = await (await visitor.get("/api/visits")).json()
    assert [v["id"] for v in mine] == [tue["id"], chicago["id"], wed["id"]]  # by start time
    on_tuesday = await (await visitor.get("/api/visits?date=2027-01-05")).json()
    # 23:30 in Chicago on Tuesday is already Wednesday in UTC and in New York.
    assert [v["id"] for v in on_tuesday] == [tue["id"], chicago["id"]]
    active = await (await visitor.get("/api/visits?state=scheduled&limit=1")).json()
    assert [v["id"] for v in active] == [tue["id"]]

    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert await (await visitor2.get("/api/visits")).json() == []
    assert (await visitor2.get(f"/api/visits/{tue['id']}")).status == 404

    officer_a = await ApiUser.sign_in(client, world.emails["officer_a"])
    seen = await (await officer_a.get(f"/api/visits?person_id={world.persons['pa1']}")).json()
    assert [v["id"] for v in seen] == [tue["id"], wed["id"]]
    assert (await officer_a.get(f"/api/visits/{chicago['id']}")).status == 404
    agency_admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    assert len(await (await agency_admin.get("/api/visits")).json()) == 3
    admin_c = await ApiUser.sign_in(client, world.emails["admin_c"])
    assert await (await admin_c.get("/api/visits")).json() == []
    assert (await admin_c.get(f"/api/visits/{tue['id']}")).status == 404
    for bad in ("?state=lost", "?limit=0", "?date=tomorrow", "?facility_id=-1", "?zzz=1"):
        assert (await officer_a.get(f"/api/visits{bad}")).status == 422, bad
    assert (await officer_a.get("/api/visits/abc")).status == 404
    assert (await officer_a.get(f"/api/visits/{2**40}")).status == 404
    assert (await officer_a.get(f"/api/visits/{2**40}/calendar.ics")).status == 404


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"minors": [{"name": "Kid", "date_of_birth": "2015-01-01"}] * 6}, 422, "invalid"),
        ({"minors": [{"name": "Big", "date_of_birth": "2008-01-01"}]}, 422, "minor_not_minor"),
        ({"minors": [{"name": "", "date_of_birth": "2015-01-01"}]}, 422, "invalid"),
        ({"start": "9999-12-31T23:00:00-14:00"}, 422, "invalid"),
        ({"start": "not a time"}, 422, "invalid"),
        ({"person_id": "abc"}, 422, "invalid"),
        ({"person_id": 10**30}, 422, "invalid"),
        ({"person_id": 2**31}, 422, "invalid"),
        ({"surprise": True}, 422, "invalid"),
    ],
)
async def test_malformed_bookings_are_422(
    client: Client,
    world: World,
    clock: ManualClock,
    body: dict[str, Any],
    status: int,
    error: str,
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    payload = {"person_id": world.persons["pa1"], "start": TUE_10, **body}
    resp = await visitor.post("/api/visits", json=payload)
    assert resp.status == status, await resp.text()
    assert code(await resp.json()) == error


async def test_only_visitors_book_and_bodies_must_be_json(
    client: Client, world: World, clock: ManualClock
) -> None:
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post("/api/visits", json={"person_id": 1, "start": TUE_10})
    assert resp.status == 403
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    resp = await visitor.post("/api/visits", data="person_id=1")
    assert resp.status == 415
    assert (await client.post("/api/visits", json={})).status == 401
    assert date(2027, 1, 4).weekday() == 0
