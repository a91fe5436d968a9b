"""A family books a video visit; the rules refuse what they do not allow (off-grid, early, late,
over the weekly limit, unverified, unapproved, banned). Frozen on Monday 4 January 2027, 07:00 in
New York (facility A)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from tests.api.booking_support import (
    TUE_10,
    TUE_11,
    WED_10,
    Client,
    approve,
    book,
    code,
    slot_starts,
)
from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, set_rules
from vvserver.db.models import (
    Account,
    Blackout,
    Notification,
    Person,
    Visit,
    VisitorBan,
    VisitTransition,
)
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.notices.ics import unfold
from vvserver.domain.services import Services


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
