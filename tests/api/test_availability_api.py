"""A visitor (or an officer) asks which visit slots a person has, through HTTP.

The clock is frozen; facility A is in America/New_York, so every answer carries -05:00 or -04:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, set_rules
from vvserver.db.models import Blackout, Person, Visit, VisitorBan
from vvserver.domain.facilities.rules import HourWindow
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]

MONDAY = date(2027, 1, 4)  # winter: New York is UTC-05:00
SPRING_FORWARD = date(2027, 3, 14)  # a Sunday: 02:00 EST -> 03:00 EDT


async def availability(user: ApiUser, person_id: int, first: date, last: date) -> Any:
    resp = await user.get(
        f"/api/persons/{person_id}/availability",
        params={"from": first.isoformat(), "to": last.isoformat()},
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


def starts(body: Any) -> list[str]:
    return [slot["start"] for slot in body["slots"]]


async def test_visitor_sees_slots_in_facility_time_with_utc_alongside(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(
        services,
        world.facility_a,
        windows=(HourWindow(1, time(9), time(11)),),  # Tuesdays 09:00-11:00
        slot_minutes=45,
        buffer_minutes=15,
    )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    body = await availability(visitor, world.persons["pa1"], MONDAY, MONDAY + timedelta(days=8))
    assert body["timezone"] == "America/New_York"
    assert body["from"] == "2027-01-04"
    assert body["slot_minutes"] == 45
    assert starts(body) == [
        "2027-01-05T09:00:00-05:00",
        "2027-01-05T10:00:00-05:00",
        "2027-01-12T09:00:00-05:00",
        "2027-01-12T10:00:00-05:00",
    ]
    first = body["slots"][0]
    assert first["end"] == "2027-01-05T09:45:00-05:00"
    assert first["start_utc"] == "2027-01-05T14:00:00Z"
    assert first["end_utc"] == "2027-01-05T14:45:00Z"
    assert first["free_kiosks"] == 2  # unit A1 has two kiosks


async def test_spring_forward_night_gives_correctly_offset_slots(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    clock.moment = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    await set_rules(
        services,
        world.facility_a,
        windows=(HourWindow(6, time(0), time(5)),),  # Sundays 00:00-05:00 local
        slot_minutes=60,
    )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    body = await availability(visitor, world.persons["pa1"], SPRING_FORWARD, SPRING_FORWARD)
    # 02:00 does not exist that night: the clock jumps from 01:59 EST to 03:00 EDT.
    assert starts(body) == [
        "2027-03-14T00:00:00-05:00",
        "2027-03-14T01:00:00-05:00",
        "2027-03-14T03:00:00-04:00",
        "2027-03-14T04:00:00-04:00",
    ]
    assert [s["start_utc"] for s in body["slots"]] == [
        "2027-03-14T05:00:00Z",
        "2027-03-14T06:00:00Z",
        "2027-03-14T07:00:00Z",
        "2027-03-14T08:00:00Z",
    ]
    assert body["slots"][1]["end"] == "2027-03-14T03:00:00-04:00"  # 01:00 EST + 60 real minutes
    resp = await visitor.post(
        "/api/visits",
        json={"person_id": world.persons["pa1"], "start": "2027-03-14T03:00:00-04:00"},
    )
    assert resp.status == 201, await resp.text()
    visit = await resp.json()
    assert visit["start"] == "2027-03-14T03:00:00-04:00"
    assert visit["start_utc"] == "2027-03-14T07:00:00Z"


async def test_lead_time_blackouts_and_weekly_caps_hide_slots(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(
        services,
        world.facility_a,
        windows=tuple(HourWindow(d, time(9), time(11)) for d in range(7)),
        slot_minutes=60,
        lead_min_minutes=24 * 60,
        lead_max_days=3,
        max_visits_per_person_week=1,
    )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    # Now is Monday 07:00: Monday is inside the lead time, Friday beyond the 3-day horizon.
    body = await availability(visitor, pa1, MONDAY, MONDAY + timedelta(days=6))
    assert starts(body) == [
        "2027-01-05T09:00:00-05:00",
        "2027-01-05T10:00:00-05:00",
        "2027-01-06T09:00:00-05:00",
        "2027-01-06T10:00:00-05:00",
    ]
    async with services.write() as s:
        s.add(
            Blackout(
                facility_id=world.facility_a,
                unit_id=None,
                starts_at=datetime(2027, 1, 5, 14, 30, tzinfo=UTC),  # Tue 09:30-10:30 local
                ends_at=datetime(2027, 1, 5, 15, 30, tzinfo=UTC),
                reason="count",
                created_by=world.accounts["admin_a"],
                created_at=clock.now(),
            )
        )
    body = await availability(visitor, pa1, MONDAY, MONDAY + timedelta(days=6))
    assert starts(body) == ["2027-01-06T09:00:00-05:00", "2027-01-06T10:00:00-05:00"]
    # A completed visit that counts fills the person's week (cap 1); a make-up visit would not.
    async with services.write() as s:
        s.add(
            Visit(
                facility_id=world.facility_a,
                unit_id=world.unit_a1,
                kiosk_id=world.kiosks["a1-1"],
                person_id=pa1,
                visitor_id=world.accounts["visitor2"],
                start_at=datetime(2027, 1, 4, 11, 0, tzinfo=UTC),
                end_at=datetime(2027, 1, 4, 12, 0, tzinfo=UTC),
                state="completed",
                counts_toward_limit=True,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    body = await availability(visitor, pa1, MONDAY, MONDAY + timedelta(days=6))
    assert body["slots"] == []
    async with services.write() as s:
        await s.execute(update(Visit).values(counts_toward_limit=False))
    body = await availability(visitor, pa1, MONDAY, MONDAY + timedelta(days=6))
    assert len(body["slots"]) == 2


async def test_bans_suspensions_and_status_empty_the_list_with_a_notice(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    body = await availability(visitor, pa1, MONDAY, MONDAY)
    assert body["notice"] is None
    assert len(body["slots"]) == 34  # 07:00 to midnight, every 30 minutes
    async with services.write() as s:
        s.add(
            VisitorBan(
                facility_id=world.facility_a,
                visitor_id=world.accounts["visitor"],
                reason="contraband",
                ends_at=datetime(2027, 1, 4, 20, 0, tzinfo=UTC),  # 15:00 local
                created_by=world.accounts["admin_a"],
                created_at=clock.now(),
            )
        )
    body = await availability(visitor, pa1, MONDAY, MONDAY)
    assert body["notice"] == "visitor_banned"
    assert starts(body)[0] == "2027-01-04T15:00:00-05:00"
    # Another visitor of the same person is not affected.
    other = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert len((await availability(other, pa1, MONDAY, MONDAY))["slots"]) == 34
    async with services.write() as s:
        await s.execute(
            update(Person)
            .where(Person.id == pa1)
            .values(visiting_suspended_until=datetime(2027, 1, 5, 0, 0, tzinfo=UTC))
        )
    body = await availability(other, pa1, MONDAY, MONDAY)
    assert body["notice"] == "person_suspended"
    assert starts(body)[0] == "2027-01-04T19:00:00-05:00"
    async with services.write() as s:
        await s.execute(update(Person).where(Person.id == pa1).values(status="released"))
    body = await availability(other, pa1, MONDAY, MONDAY)
    assert body == {**body, "notice": "person_unavailable", "slots": []}


async def test_only_approved_visitors_and_staff_in_scope_may_look(
    client: Client, world: World, clock: ManualClock
) -> None:
    path = f"/api/persons/{world.persons['pb1']}/availability?from=2027-01-04&to=2027-01-04"
    visitor2 = await ApiUser.sign_in(client, world.emails["visitor2"])  # approved for pa1 only
    resp = await visitor2.get(path)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "not_approved"
    resp = await visitor2.get("/api/persons/999999/availability?from=2027-01-04&to=2027-01-04")
    assert (await resp.json())["error"]["code"] == "not_approved"
    officer_b = await ApiUser.sign_in(client, world.emails["officer_b"])
    assert (await officer_b.get(path)).status == 200
    officer_a = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer_a.get(path)).status == 404  # another facility: not even its existence
    admin_c = await ApiUser.sign_in(client, world.emails["admin_c"])
    assert (await admin_c.get(path)).status == 404
    agency_admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    assert (await agency_admin.get(path)).status == 200
    assert (await client.get(path)).status == 401
    kiosk = {"Authorization": f"Bearer {world.kiosk_tokens['b1-1']}"}
    assert (await client.get(path, headers=kiosk)).status == 403


@pytest.mark.parametrize(
    "query",
    [
        "from=2027-01-05&to=2027-01-04",  # out of order
        "from=2027-01-01&to=2027-02-01",  # 32 days
        "from=2027-01-01",
        "from=yesterday&to=2027-01-02",
        "from=9999-12-30&to=9999-12-31",
        "from=2027-01-01&to=2027-01-02&extra=1",
    ],
)
async def test_bad_ranges_are_422(
    client: Client, world: World, clock: ManualClock, query: str
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    resp = await visitor.get(f"/api/persons/{world.persons['pa1']}/availability?{query}")
    assert resp.status == 422, await resp.text()


async def test_a_31_day_range_is_fine(client: Client, world: World, clock: ManualClock) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    body = await availability(visitor, world.persons["pa1"], MONDAY, MONDAY + timedelta(days=30))
    # OPEN_RULES book up to 14 days ahead: the horizon ends on 18 January at 07:00 local.
    assert starts(body)[-1] == "2027-01-18T07:00:00-05:00"
