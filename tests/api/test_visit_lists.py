"""The kiosk sees its day, staff and visitors list visits in their scope, and malformed or
foreign bookings are refused. Frozen on Monday 4 January 2027, 07:00 in New York."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import update

from tests.api.booking_support import (
    TUE_10,
    WED_10,
    Client,
    book,
    code,
)
from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock
from vvserver.db.models import (
    Account,
    Kiosk,
)
from vvserver.domain.services import Services


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
