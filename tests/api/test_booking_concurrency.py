"""Many people book at the same moment, through a real HTTP server, on SQLite and PostgreSQL.

Exactly the capacity is handed out: one kiosk left means one booking, a weekly cap of three means
three bookings, and every other request gets a 409 with the reason, never a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, ApiUser, World, build_world
from vvserver.app import build_services, create_app
from vvserver.db.models import Account, Approval, Facility, Person
from vvserver.domain.booking import book
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.services import Services

NEW_YORK = ZoneInfo("America/New_York")
RACERS = 50


@dataclasses.dataclass
class Stage:
    services: Services
    world: World
    client: TestClient[web.Request, web.Application]


@pytest.fixture
async def stage(db_url: str, tmp_path: Path, aiohttp_client: AiohttpClient) -> AsyncIterator[Stage]:
    """The demo agency on ``db_url``, served by a real aiohttp server on loopback."""
    settings = make_settings(tmp_path / "data", db_url)
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    yield Stage(services, world, client)
    await services.db.close()


def next_monday() -> date:
    """Monday of next week, facility-local: always ahead and within the 14-day horizon."""
    today = datetime.now(UTC).astimezone(NEW_YORK).date()
    return today + timedelta(days=7 - today.weekday())


def local(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).isoformat()


async def add_visitors_and_persons(stage: Stage, count: int) -> list[int]:
    """``count`` verified visitors, each approved for a different new person in unit A1."""
    services, world = stage.services, stage.world
    now = services.clock.now()
    password_hash = await asyncio.to_thread(services.passwords.hash, PASSWORD)
    async with services.write() as s:
        persons = [
            Person(
                agency_id=world.agency_id,
                facility_id=world.facility_a,
                unit_id=world.unit_a1,
                booking_number=f"R-{n:04d}",
                first_name=f"Racer{n}",
                last_name="Doe",
                status="active",
                created_at=now,
            )
            for n in range(count)
        ]
        visitors = [
            Account(
                email=f"racer{n}@example.net",
                password_hash=password_hash,
                role="visitor",
                name=f"Racer {n}",
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                date_of_birth=date(1985, 1, 1),
                id_status="verified",
            )
            for n in range(count)
        ]
        s.add_all([*persons, *visitors])
        await s.flush()
        s.add_all(
            Approval(
                person_id=person.id,
                visitor_id=visitor.id,
                facility_id=world.facility_a,
                status="approved",
                relationship="parent",
                created_at=now,
            )
            for person, visitor in zip(persons, visitors, strict=True)
        )
        return [p.id for p in persons]


async def set_caps(services: Services, facility_id: int, **caps: Any) -> None:
    async with services.write() as s:
        facility = await s.get(Facility, facility_id)
        assert facility is not None
        facility.rules = dataclasses.replace(
            VisitingRules.from_json(facility.rules), **caps
        ).to_json()


async def outcome(resp: Any) -> tuple[int, str]:
    body = await resp.json()
    return resp.status, "created" if resp.status == 201 else body["error"]["code"]


async def test_fifty_visitors_race_for_the_last_kiosk(stage: Stage) -> None:
    slot = local(next_monday(), 10)
    first = await ApiUser.sign_in(stage.client, stage.world.emails["visitor"])
    resp = await first.post(
        "/api/visits", json={"person_id": stage.world.persons["pa1"], "start": slot}
    )
    assert resp.status == 201, await resp.text()  # kiosk a1-1 is taken: a1-2 is the last one

    persons = await add_visitors_and_persons(stage, RACERS)
    users = await asyncio.gather(
        *(ApiUser.sign_in(stage.client, f"racer{n}@example.net") for n in range(RACERS))
    )
    responses = await asyncio.gather(
        *(
            user.post("/api/visits", json={"person_id": person_id, "start": slot})
            for user, person_id in zip(users, persons, strict=True)
        )
    )
    results = Counter([await outcome(resp) for resp in responses])
    assert results == {(201, "created"): 1, (409, "slot_taken"): RACERS - 1}

    officer = await ApiUser.sign_in(stage.client, stage.world.emails["officer_a"])
    booked = await (await officer.get("/api/visits?state=scheduled")).json()
    assert sorted(v["kiosk_id"] for v in booked) == sorted(
        stage.world.kiosks[k] for k in ("a1-1", "a1-2")
    )


async def test_one_visitor_fires_fifty_bookings_and_the_weekly_cap_holds(stage: Stage) -> None:
    await set_caps(
        stage.services,
        stage.world.facility_a,
        max_visits_per_visitor_week=3,
        max_visits_per_person_week=10,
    )
    monday = next_monday()
    start = datetime.combine(monday, time(0), tzinfo=NEW_YORK)
    slots = [(start + timedelta(minutes=30 * n)).isoformat() for n in range(RACERS)]
    visitor = await ApiUser.sign_in(stage.client, stage.world.emails["visitor"])
    pa1 = stage.world.persons["pa1"]
    responses = await asyncio.gather(
        *(visitor.post("/api/visits", json={"person_id": pa1, "start": s}) for s in slots)
    )
    results = Counter([await outcome(resp) for resp in responses])
    assert results == {(201, "created"): 3, (409, "visitor_weekly_limit"): RACERS - 3}


async def test_the_unique_index_answers_409_even_if_the_checks_were_fooled(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    slot = local(next_monday(), 11)
    visitor = await ApiUser.sign_in(stage.client, stage.world.emails["visitor"])
    pa1 = stage.world.persons["pa1"]
    resp = await visitor.post("/api/visits", json={"person_id": pa1, "start": slot})
    assert resp.status == 201, await resp.text()
    taken = (await resp.json())["kiosk_id"]
    # Pretend the checks saw nothing (pa1 is busy, the kiosk taken): only the index is left.
    monkeypatch.setattr(book, "slot_refusal", lambda *_args: None)
    monkeypatch.setattr(book, "first_free_kiosk", lambda *_args: taken)
    other = await ApiUser.sign_in(stage.client, stage.world.emails["visitor2"])
    resp = await other.post("/api/visits", json={"person_id": pa1, "start": slot})
    assert await outcome(resp) == (409, "slot_taken")


async def test_availability_reschedule_and_cancel_work_on_both_engines(stage: Stage) -> None:
    """The same statements, on this engine: a visit is booked, moved, listed and cancelled."""
    monday = next_monday()
    pa1 = stage.world.persons["pa1"]
    path = f"/api/persons/{pa1}/availability?from={monday}&to={monday}"
    visitor = await ApiUser.sign_in(stage.client, stage.world.emails["visitor"])
    officer = await ApiUser.sign_in(stage.client, stage.world.emails["officer_a"])
    slots = (await (await visitor.get(path)).json())["slots"]
    assert len(slots) == 48  # all day, every 30 minutes
    assert slots[20]["free_kiosks"] == 2
    resp = await visitor.post("/api/visits", json={"person_id": pa1, "start": slots[20]["start"]})
    assert resp.status == 201, await resp.text()
    booked = await resp.json()
    resp = await visitor.post(
        f"/api/visits/{booked['id']}/reschedule", json={"start": slots[21]["start"]}
    )
    assert resp.status == 201, await resp.text()
    moved = await resp.json()
    staff_view = [s["start"] for s in (await (await officer.get(path)).json())["slots"]]
    assert slots[20]["start"] in staff_view
    assert slots[21]["start"] not in staff_view
    listed = await (await officer.get(f"/api/visits?person_id={pa1}")).json()
    assert [(v["id"], v["state"]) for v in listed] == [
        (booked["id"], "cancelled"),
        (moved["id"], "scheduled"),
    ]
    resp = await officer.post(f"/api/visits/{moved['id']}/cancel", json={"reason": "lockdown"})
    assert resp.status == 200, await resp.text()
    assert len((await (await visitor.get(path)).json())["slots"]) == 48
