"""Visit now from the visitor's side of the API: when the button may show, what pressing it books,
and fifty visitors pressing it at once for the unit's one online kiosk (exactly one wins)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestClient

from tests.api.test_booking_concurrency import Stage, add_visitors_and_persons, outcome
from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, build_world
from tests.signaling.conftest import receive_until
from vvserver.app import build_services, create_app
from vvserver.db.models import Approval, Facility, Visit
from vvserver.domain.facilities.rules import HourWindow, VisitingRules
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]
ALL_DAY = tuple(HourWindow(d, time(0, 0), time(0, 0)) for d in range(7))
RACERS = 50


async def set_rules(services: Services, facility_id: int, **changes: Any) -> None:
    async with services.write() as s:
        facility = await s.get(Facility, facility_id)
        assert facility is not None
        facility.rules = dataclasses.replace(
            VisitingRules.from_json(facility.rules), **changes
        ).to_json()


async def open_visit_now(services: Services, world: World, **changes: Any) -> None:
    """Facility A offers Visit now all day, every day (and whatever else the test says)."""
    await set_rules(
        services, world.facility_a, on_demand_enabled=True, on_demand_windows=ALL_DAY, **changes
    )


@asynccontextmanager
async def kiosk_socket(
    client: Client, world: World, name: str = "a1-1"
) -> AsyncIterator[ClientWebSocketResponse]:
    """The kiosk's own socket: from its schedule on until it closes, the kiosk is online."""
    headers = {"Authorization": f"Bearer {world.kiosk_tokens[name]}"}
    async with client.ws_connect("/ws/kiosk", headers=headers) as ws:
        await receive_until(ws, "schedule")
        yield ws


async def test_the_button_shows_only_when_the_unit_allows_it_and_a_kiosk_is_online(
    client: Client, services: Services, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    path = f"/api/persons/{pa1}/visit-now"

    status = await (await visitor.get(path)).json()
    assert (status["available"], status["code"]) == (False, "on_demand_off")
    resp = await visitor.post(path)
    assert await outcome(resp) == (409, "on_demand_off")

    await open_visit_now(services, world, on_demand_minutes=20)
    status = await (await visitor.get(path)).json()
    assert (status["available"], status["code"]) == (False, "kiosk_offline")

    async with kiosk_socket(client, world):
        status = await (await visitor.get(path)).json()
        assert status == {
            "person_id": pa1,
            "available": True,
            "code": None,
            "message": None,
            "minutes": 20,
            "ring_seconds": 60,
        }
        # Outside the on-demand hours the button goes away again.
        later = (datetime.now(UTC).weekday() + 3) % 7  # neither today nor tomorrow anywhere
        await set_rules(
            services,
            world.facility_a,
            on_demand_windows=(HourWindow(later, time(9, 0), time(10, 0)),),
        )
        status = await (await visitor.get(path)).json()
        assert status["code"] == "outside_on_demand_hours"

    # A person the visitor is not approved for: the same answer as for no person at all.
    other = await visitor.get(f"/api/persons/{world.persons['pa2']}/visit-now")
    assert other.status == 403
    assert (await other.json())["error"]["code"] == "not_approved"


async def test_pressing_visit_now_books_a_ringing_visit_on_the_online_kiosk(
    client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world, on_demand_minutes=15)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    async with kiosk_socket(client, world, "a1-2"):  # a1-1 (the lower id) is offline
        resp = await visitor.post(f"/api/persons/{pa1}/visit-now")
        assert resp.status == 201, await resp.text()
        booked = await resp.json()
    assert booked["state"] == "ringing"
    assert booked["on_demand"] == "visitor"
    assert booked["kiosk_id"] == world.kiosks["a1-2"]
    assert booked["join_url"].startswith("http://127.0.0.1:8080/join/")
    start = datetime.fromisoformat(booked["start_utc"])
    ring_until = datetime.fromisoformat(booked["ring_until"])
    end = datetime.fromisoformat(booked["end_utc"])
    assert abs((start - services.clock.now()).total_seconds()) < 5
    assert ring_until - start == timedelta(seconds=60)
    assert end - ring_until == timedelta(minutes=15)  # the ring time is held on top

    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    listed = await (await officer.get("/api/visits?state=ringing")).json()
    assert [v["id"] for v in listed] == [booked["id"]]
    # The same visitor and person cannot ring twice at once.
    async with kiosk_socket(client, world, "a1-1"):
        again = await visitor.post(f"/api/persons/{pa1}/visit-now")
        assert await outcome(again) == (409, "person_busy")


async def test_privileged_approvals_need_the_facility_to_allow_on_demand_visits(
    client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    async with services.write() as s:
        approval = (
            await s.execute(
                Approval.__table__.select().where(
                    Approval.visitor_id == world.accounts["visitor"],
                    Approval.person_id == world.persons["pa1"],
                )
            )
        ).first()
        assert approval is not None
        row = await s.get(Approval, approval.id)
        assert row is not None
        row.professional = "attorney"
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    path = f"/api/persons/{world.persons['pa1']}/visit-now"
    async with kiosk_socket(client, world):
        assert (await (await visitor.get(path)).json())["code"] == "on_demand_privileged"
        await open_visit_now(services, world, on_demand_privileged=True)
        resp = await visitor.post(path)
        assert resp.status == 201, await resp.text()
        booked = await resp.json()
    assert booked["privileged"] is True
    assert booked["recorded"] is False


async def test_a_unit_override_turns_visit_now_on_for_one_unit_only(
    client: Client, services: Services, world: World
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await admin.put(
        f"/api/units/{world.unit_a1}/rules",
        json={
            "on_demand_enabled": True,
            "on_demand_minutes": 20,
            "on_demand_windows": [
                {"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)
            ],
            "on_demand_counts_toward_limit": False,
            "on_demand_gap_minutes": 90,
        },
    )
    assert resp.status == 200, await resp.text()
    unit = await resp.json()
    assert unit["effective_rules"]["on_demand_enabled"] is True
    assert unit["effective_rules"]["on_demand_minutes"] == 20
    assert unit["effective_rules"]["on_demand_gap_minutes"] == 90
    facility = await (await admin.get(f"/api/facilities/{world.facility_a}")).json()
    assert facility["rules"]["on_demand_enabled"] is False  # the facility's own rules

    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    async with kiosk_socket(client, world):
        resp = await visitor.post(f"/api/persons/{world.persons['pa1']}/visit-now")
        assert resp.status == 201, await resp.text()
        booked = await resp.json()
    async with services.read() as s:
        visit = await s.get(Visit, booked["id"])
        assert visit is not None
        assert visit.limit_exempt is True  # the unit's rule: not counted toward weekly limits
        assert visit.counts_toward_limit is False


# --------------------------------------------------------------------------- the race


@pytest.fixture
async def stage(db_url: str, tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[Stage]:
    """The demo agency on ``db_url`` (SQLite and PostgreSQL), served on loopback."""
    settings = make_settings(tmp_path / "data", db_url)
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    yield Stage(services, world, client)
    await services.db.close()


async def test_fifty_visitors_press_visit_now_at_once_for_the_one_online_kiosk(
    stage: Stage,
) -> None:
    await open_visit_now(stage.services, stage.world, max_visits_per_person_week=50)
    persons = await add_visitors_and_persons(stage, RACERS)
    users = await asyncio.gather(
        *(ApiUser.sign_in(stage.client, f"racer{n}@example.net") for n in range(RACERS))
    )
    async with kiosk_socket(stage.client, stage.world, "a1-1"):  # a1-2 stays offline
        responses = await asyncio.gather(
            *(
                user.post(f"/api/persons/{person_id}/visit-now")
                for user, person_id in zip(users, persons, strict=True)
            )
        )
        results = Counter([await outcome(resp) for resp in responses])
    assert results == {(201, "created"): 1, (409, "kiosk_busy"): RACERS - 1}
    officer = await ApiUser.sign_in(stage.client, stage.world.emails["officer_a"])
    ringing = await (await officer.get("/api/visits?state=ringing")).json()
    assert [v["kiosk_id"] for v in ringing] == [stage.world.kiosks["a1-1"]]
