"""A family asks for "every Sunday at 2 PM": the scheduler books each week when its booking
window opens (the same booking as by hand: rules, limits, e-mail), reports a week it cannot book
with the nearest free times, and keeps going through blackouts and transfers. Frozen on Monday
4 January 2027, 07:00 in New York (facility A; the World's rules: every slot open, 14 days ahead).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.api.booking_support import Client, book, code
from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, mail_to, set_rules
from vvserver.db.models import SeriesOccurrence, Visit
from vvserver.domain.services import Services
from vvserver.scheduling.loop import scheduler_pass
from vvserver.scheduling.next_due import next_due_at

SUNDAY = 6
SUN_10_JAN = datetime(2027, 1, 10, 19, 0, tzinfo=UTC)  # 14:00 EST
SUN_17_JAN = datetime(2027, 1, 17, 19, 0, tzinfo=UTC)
SUN_24_JAN = datetime(2027, 1, 24, 19, 0, tzinfo=UTC)
SUN_31_JAN = datetime(2027, 1, 31, 19, 0, tzinfo=UTC)


async def ask_for_sundays(visitor: ApiUser, person_id: int, **extra: Any) -> dict[str, Any]:
    resp = await visitor.post(
        "/api/series", json={"person_id": person_id, "weekday": SUNDAY, "time": "14:00", **extra}
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def series_visits(services: Services, visitor_id: int) -> list[tuple[datetime, str]]:
    async with services.read() as s:
        rows = await s.execute(
            select(Visit.start_at, Visit.state)
            .where(Visit.visitor_id == visitor_id)
            .order_by(Visit.start_at)
        )
        return [(start, state) for start, state in rows.all()]


async def test_each_sunday_is_booked_as_its_window_opens_and_emailed(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    series = await ask_for_sundays(visitor, world.persons["pa1"])
    assert series["state"] == "active"
    assert series["next_date"] == "2027-01-10"
    assert series["timezone"] == "America/New_York"

    # The windows of 10 and 17 January are open already (14 days ahead); 24 January's is not.
    report = await scheduler_pass(services, clock.now())
    assert report.series_booked == 2
    visitor_id = world.accounts["visitor"]
    assert await series_visits(services, visitor_id) == [
        (SUN_10_JAN, "scheduled"),
        (SUN_17_JAN, "scheduled"),
    ]
    booked = await mail_to(services, world.emails["visitor"], "visit_booked")
    assert len(booked) == 2
    assert "/join/" in booked[0].body
    assert booked[0].ics is not None
    assert "BEGIN:VEVENT" in booked[0].ics

    # 24 January's window opens on 10 January, 14:00 New York, to the second.
    clock.moment = SUN_24_JAN - timedelta(days=14, seconds=1)
    assert (await scheduler_pass(services, clock.now())).series_booked == 0
    clock.moment = SUN_24_JAN - timedelta(days=14)
    assert (await scheduler_pass(services, clock.now())).series_booked == 1
    assert (SUN_24_JAN, "scheduled") in await series_visits(services, visitor_id)
    # Again at the same moment (a second pass, a restart): nothing is booked twice.
    assert (await scheduler_pass(services, clock.now())).series_booked == 0
    assert len(await series_visits(services, visitor_id)) == 3

    visitor = await ApiUser.sign_in(client, world.emails["visitor"])  # a new day, a new session

    resp = await visitor.get(f"/api/series/{series['id']}")
    shown = await resp.json()
    assert [o["date"] for o in shown["occurrences"]] == ["2027-01-24", "2027-01-17", "2027-01-10"]
    assert {o["outcome"] for o in shown["occurrences"]} == {"booked"}
    assert shown["next_date"] == "2027-01-31"
    assert shown["books_at"] == "2027-01-17T19:00:00Z"


async def test_the_scheduler_sleeps_until_the_next_window_opens(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(services, world.facility_a, lead_max_days=3)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    series = await ask_for_sundays(visitor, world.persons["pa1"])
    assert series["books_at"] == "2027-01-07T19:00:00Z"
    assert (await scheduler_pass(services, clock.now())).series_booked == 0
    assert await next_due_at(services, clock.now()) == SUN_10_JAN - timedelta(days=3)
    await visitor.post(f"/api/series/{series['id']}/pause")
    assert await next_due_at(services, clock.now()) is None


async def test_a_taken_sunday_is_reported_with_the_nearest_free_times(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    other = await ApiUser.sign_in(client, world.emails["visitor2"])
    pa1 = world.persons["pa1"]
    # Another family took 17 January at 2 PM with the same person before the series existed.
    status, _ = await book(other, pa1, "2027-01-17T14:00:00-05:00")
    assert status == 201
    series = await ask_for_sundays(visitor, pa1)

    report = await scheduler_pass(services, clock.now())
    assert (report.series_booked, report.series_skipped) == (1, 1)

    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    skipped = shown["occurrences"][0]
    assert skipped["date"] == "2027-01-17"
    assert skipped["outcome"] == "skipped"
    assert skipped["reason_code"] == "person_busy"
    assert [a["start_utc"] for a in skipped["alternatives"]] == [
        "2027-01-17T18:30:00Z",  # 13:30
        "2027-01-17T19:30:00Z",  # 14:30
        "2027-01-17T18:00:00Z",  # 13:00
    ]
    [notice] = await mail_to(services, world.emails["visitor"], "series_skipped")
    assert "Sunday 17 January 2027, 14:00" in notice.subject
    assert "Sunday 17 January 2027, 13:30" in notice.body
    assert "continues" in notice.body
    assert shown["state"] == "active"


async def test_weekly_limits_apply_as_to_any_booking(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(services, world.facility_a, max_visits_per_person_week=1)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    other = await ApiUser.sign_in(client, world.emails["visitor2"])
    pa1 = world.persons["pa1"]
    status, _ = await book(other, pa1, "2027-01-12T10:00:00-05:00")  # Tuesday, week of the 11th
    assert status == 201
    series = await ask_for_sundays(visitor, pa1)
    await scheduler_pass(services, clock.now())
    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    by_date = {o["date"]: o for o in shown["occurrences"]}
    assert by_date["2027-01-10"]["outcome"] == "booked"
    assert by_date["2027-01-17"]["reason_code"] == "person_weekly_limit"


async def test_blackout_and_transfer_cancel_occurrences_not_the_series(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    pa1 = world.persons["pa1"]
    series = await ask_for_sundays(visitor, pa1)
    await scheduler_pass(services, clock.now())

    # A blackout over 17 January (booked) and 31 January (not booked yet).
    for start in (SUN_17_JAN, SUN_31_JAN):
        resp = await admin.post(
            f"/api/facilities/{world.facility_a}/blackouts",
            json={
                "starts_at": (start - timedelta(hours=1)).isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
                "reason": "Lockdown drill",
            },
        )
        assert resp.status == 201, await resp.text()
    visitor_id = world.accounts["visitor"]
    assert await series_visits(services, visitor_id) == [
        (SUN_10_JAN, "scheduled"),
        (SUN_17_JAN, "cancelled"),
    ]
    [cancelled] = await mail_to(services, world.emails["visitor"], "visit_cancelled")
    assert "Lockdown drill" in cancelled.body
    assert "weekly visit goes on" in cancelled.body
    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    assert shown["state"] == "active"
    assert shown["occurrences"][0]["visit_state"] == "cancelled"

    clock.moment = SUN_24_JAN - timedelta(days=14)
    await scheduler_pass(services, clock.now())
    clock.moment = SUN_31_JAN - timedelta(days=14)
    report = await scheduler_pass(services, clock.now())
    assert report.series_skipped == 1
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])  # a new day, a new session
    admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    assert shown["occurrences"][0]["date"] == "2027-01-31"
    assert shown["occurrences"][0]["reason_code"] == "blackout"

    # The person moves to the Annex (Chicago): the booked visits at the jail are cancelled,
    # the series goes on there, at 2 PM Chicago time.
    resp = await admin.post(
        f"/api/persons/{pa1}/transfer",
        json={"facility_id": world.facility_b, "unit_id": world.unit_b1, "reason": "Court"},
    )
    assert resp.status == 200, await resp.text()
    assert {
        state for start, state in await series_visits(services, visitor_id) if start > clock.now()
    } == {"cancelled"}
    transferred = await mail_to(services, world.emails["visitor"], "visit_cancelled")
    assert all("weekly visit goes on" in mail.body for mail in transferred)
    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    assert (shown["state"], shown["facility_id"]) == ("active", world.facility_b)
    feb_7_chicago = datetime(2027, 2, 7, 20, 0, tzinfo=UTC)  # 14:00 CST
    clock.moment = feb_7_chicago - timedelta(days=14)
    assert (await scheduler_pass(services, clock.now())).series_booked == 1
    visits = await series_visits(services, visitor_id)
    assert (feb_7_chicago, "scheduled") in visits


async def test_released_person_ends_the_series_with_one_notice(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    pa1 = world.persons["pa1"]
    series = await ask_for_sundays(visitor, pa1)
    resp = await admin.post(f"/api/persons/{pa1}/release", json={"reason": "Bail"})
    assert resp.status == 200, await resp.text()
    report = await scheduler_pass(services, clock.now())
    assert (report.series_booked, report.series_ended) == (0, 1)
    shown = await (await visitor.get(f"/api/series/{series['id']}")).json()
    assert shown["state"] == "ended"
    assert len(await mail_to(services, world.emails["visitor"], "series_ended")) == 1
    assert (await scheduler_pass(services, clock.now())).changed_anything() is False


async def test_pause_resume_and_cancel(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    series = await ask_for_sundays(visitor, world.persons["pa1"])
    sid = series["id"]
    resp = await visitor.post(f"/api/series/{sid}/pause")
    assert (await resp.json())["state"] == "paused"
    assert (await visitor.post(f"/api/series/{sid}/pause")).status == 409
    assert (await scheduler_pass(services, clock.now())).series_booked == 0

    # Three weeks later it is resumed: the weeks passed are not booked after the fact.
    clock.moment = datetime(2027, 1, 25, 12, 0, tzinfo=UTC)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])  # a new day, a new session
    resp = await visitor.post(f"/api/series/{sid}/resume")
    resumed = await resp.json()
    assert (resumed["state"], resumed["next_date"]) == ("active", "2027-01-31")
    assert (await scheduler_pass(services, clock.now())).series_booked == 2  # 31 Jan, 7 Feb
    resp = await visitor.post(f"/api/series/{sid}/cancel")
    assert (await resp.json())["state"] == "cancelled"
    assert (await visitor.post(f"/api/series/{sid}/resume")).status == 409
    clock.moment += timedelta(days=7)
    assert (await scheduler_pass(services, clock.now())).series_booked == 0
    # The visits booked before the cancellation stay booked.
    visits = await series_visits(services, world.accounts["visitor"])
    assert visits[-1] == (datetime(2027, 2, 7, 19, 0, tzinfo=UTC), "scheduled")


async def test_daylight_saving_keeps_two_pm_local(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    clock.moment = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # the clocks go forward on 14 March
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    await ask_for_sundays(visitor, world.persons["pa1"])
    await scheduler_pass(services, clock.now())
    assert [start for start, _ in await series_visits(services, world.accounts["visitor"])] == [
        datetime(2027, 3, 7, 19, 0, tzinfo=UTC),  # 14:00 EST
        datetime(2027, 3, 14, 18, 0, tzinfo=UTC),  # 14:00 EDT
    ]


async def test_what_a_series_request_must_be(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]

    async def ask(**body: Any) -> tuple[int, Any]:
        payload = {"person_id": pa1, "weekday": SUNDAY, "time": "14:00", **body}
        resp = await visitor.post("/api/series", json=payload)
        return resp.status, await resp.json()

    status, body = await ask(time="14:10")
    assert (status, code(body)) == (422, "not_a_slot")
    status, body = await ask(time="25:00")
    assert status == 422
    status, body = await ask(weekday=7)
    assert status == 422
    status, body = await ask(person_id=world.persons["pa2"])
    assert (status, code(body)) == (403, "not_approved")
    assert (await ask())[0] == 201
    status, body = await ask()
    assert (status, code(body)) == (409, "series_exists")

    # Staff see series of the people in their scope, and cannot create one.
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    listed = await (await officer.get(f"/api/series?facility_id={world.facility_a}")).json()
    assert [s["person_id"] for s in listed] == [pa1]
    assert (await officer.post("/api/series", json={})).status == 403
    other_facility = await ApiUser.sign_in(client, world.emails["officer_b"])
    assert await (await other_facility.get("/api/series")).json() == []
    sid = listed[0]["id"]
    assert (await other_facility.get(f"/api/series/{sid}")).status == 404
    assert (await officer.post(f"/api/series/{sid}/cancel")).status == 403
    stranger = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert (await stranger.get(f"/api/series/{sid}")).status == 404
    assert (await stranger.post(f"/api/series/{sid}/pause")).status == 404
    async with services.read() as s:
        assert (await s.scalar(select(SeriesOccurrence.id))) is None
