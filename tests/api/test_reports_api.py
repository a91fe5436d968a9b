"""A facility admin reads the facility's reports: visits per local day by outcome, the no-show
rate, connected and lost minutes, and how often each person in custody was visited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, add_visit, build_world
from tests.store_helpers import ManualClock
from vvserver.app import build_services, create_app
from vvserver.db.models import Visit
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]
NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class Reported:
    client: Client
    services: Services
    world: World


async def past_visit(
    services: Services,
    world: World,
    local_start: datetime,
    state: str,
    *,
    person: str = "pa1",
    kiosk: str = "a1-1",
    **figures: float,
) -> int:
    visit_id = await add_visit(services, world, person=person, kiosk=kiosk, state=state)
    async with services.write() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        length = visit.end_at - visit.start_at
        visit.start_at = local_start.astimezone(UTC)
        visit.end_at = visit.start_at + length
        for name, value in figures.items():
            setattr(visit, name, value)
    return visit_id


@pytest.fixture
async def reported(
    aiohttp_client: AiohttpClient, tmp_path: Path, db_url: str
) -> AsyncIterator[Reported]:
    services = build_services(make_settings(tmp_path / "data", db_url), passwords=fast_passwords())
    services.clock = ManualClock(datetime(2027, 1, 4, 12, 0, tzinfo=UTC))  # 07:00 in New York
    try:
        world = await build_world(services)
        # 23:30 on 2 January in New York is already 3 January in UTC: it counts on the 2nd.
        await past_visit(
            services,
            world,
            datetime(2027, 1, 2, 23, 30, tzinfo=NEW_YORK),
            "completed",
            visitor_connected_s=1200,
            kiosk_connected_s=1140,
            visitor_lost_s=30,
        )
        day = datetime(2027, 1, 3, tzinfo=NEW_YORK)
        await past_visit(services, world, day.replace(hour=10), "no_show")
        await past_visit(services, world, day.replace(hour=11), "cancelled")
        await past_visit(
            services,
            world,
            day.replace(hour=12),
            "terminated",
            visitor_connected_s=600,
            kiosk_connected_s=600,
            kiosk_lost_s=90,
        )
        await past_visit(
            services,
            world,
            datetime(2026, 12, 15, 10, tzinfo=NEW_YORK),
            "completed",
            person="pa2",
            visitor_connected_s=1800,
            kiosk_connected_s=1800,
        )
        await past_visit(
            services,
            world,
            day.replace(hour=10),
            "completed",
            person="pb1",
            kiosk="b1-1",
            visitor_connected_s=60,
            kiosk_connected_s=60,
        )
        client = await aiohttp_client(create_app(services.settings, services=services, workers=[]))
        yield Reported(client, services, world)
    finally:
        await services.db.close()


async def report(user: ApiUser, facility_id: int, **params: str) -> dict[str, Any]:
    resp = await user.get(f"/api/facilities/{facility_id}/reports", params=params)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_admin_reads_the_figures_of_a_date_range(reported: Reported) -> None:
    world = reported.world
    admin = await ApiUser.sign_in(reported.client, world.emails["admin_a"])
    body = await report(admin, world.facility_a, date_from="2026-12-01", date_to="2027-01-04")
    assert (body["date_from"], body["date_to"]) == ("2026-12-01", "2027-01-04")
    assert body["timezone"] == "America/New_York"
    days = {d["date"]: d for d in body["visits_per_day"]}
    assert len(days) == 35
    assert days["2027-01-02"] == {
        "date": "2027-01-02",
        "booked": 1,
        "completed": 1,
        "no_show": 0,
        "cancelled": 0,
        "failed": 0,
        "terminated": 0,
    }
    jan3 = days["2027-01-03"]
    assert (jan3["booked"], jan3["no_show"], jan3["cancelled"], jan3["terminated"]) == (3, 1, 1, 1)
    assert jan3["completed"] == 0  # facility B's visit that day is not counted here
    assert days["2026-12-15"]["completed"] == 1
    assert days["2026-12-16"]["booked"] == 0
    # 1 no-show out of 4 visits whose slot came (the cancelled one never did).
    assert body["no_show_rate"] == 0.25
    # Both sides connected: 1140 s, 600 s and 1800 s -> 19.67 minutes on average.
    assert body["avg_connected_minutes"] == 19.67
    assert body["lost_minutes"] == 2.0
    regularity = {p["person_id"]: p for p in body["contact_regularity"]}
    assert regularity[world.persons["pa1"]]["months"] == [
        {"month": "2026-12", "visits": 0},
        {"month": "2027-01", "visits": 2},
    ]
    assert regularity[world.persons["pa2"]]["months"] == [
        {"month": "2026-12", "visits": 1},
        {"month": "2027-01", "visits": 0},
    ]
    assert world.persons["pb1"] not in regularity
    assert all(p["booking_number"] for p in body["contact_regularity"])


async def test_default_range_and_refusals(reported: Reported) -> None:
    world = reported.world
    admin = await ApiUser.sign_in(reported.client, world.emails["admin_a"])
    body = await report(admin, world.facility_a)
    assert (body["date_from"], body["date_to"]) == ("2026-12-06", "2027-01-04")
    assert len(body["visits_per_day"]) == 30
    quiet = await report(admin, world.facility_a, date_from="2026-06-01", date_to="2026-06-02")
    assert quiet["no_show_rate"] is None
    assert quiet["avg_connected_minutes"] is None
    assert quiet["lost_minutes"] == 0.0

    url = f"/api/facilities/{world.facility_a}/reports"
    too_long = await admin.get(url, params={"date_from": "2025-01-01", "date_to": "2026-12-31"})
    assert (too_long.status, (await too_long.json())["error"]["code"]) == (422, "range_too_long")
    backwards = await admin.get(url, params={"date_from": "2027-01-02", "date_to": "2027-01-01"})
    assert backwards.status == 422
    assert (await admin.get(f"/api/facilities/{world.facility_b}/reports")).status == 404
    officer = await ApiUser.sign_in(reported.client, world.emails["officer_a"])
    assert (await officer.get(url)).status == 403

    agency = await ApiUser.sign_in(reported.client, world.emails["agency_admin"])
    annex = await report(agency, world.facility_b, date_from="2027-01-03", date_to="2027-01-03")
    assert annex["timezone"] == "America/Chicago"
    assert annex["visits_per_day"][0]["completed"] == 1
    assert annex["avg_connected_minutes"] == 1.0
