"""An officer flags moments of a visit with a note; a reviewer reads them at their offsets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, add_visit, build_world, started_visit
from vvserver.app import build_services, create_app
from vvserver.db.models import Account, AuditEntry, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.flags import FlagRequest, flag_visit, list_flags
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def flags_client(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services
) -> Client:
    return await aiohttp_client(create_app(settings, services=services, workers=[]))


async def flag_audit(services: Services, visit_id: int) -> list[tuple[str, str]]:
    async with services.read() as s:
        rows = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"visit:{visit_id}")
            .order_by(AuditEntry.seq)
        )
        return [(a.action, a.outcome) for a in rows]


async def test_officer_flags_a_live_visit_at_its_offset(
    flags_client: Client, world: World, services: Services
) -> None:
    visit_id = await started_visit(services, world, started_ago=timedelta(minutes=7, seconds=30))
    officer = await ApiUser.sign_in(flags_client, world.emails["officer_a"])
    resp = await officer.post(
        f"/api/visits/{visit_id}/flags", json={"note": "  passes something to the camera  "}
    )
    assert resp.status == 201, await resp.text()
    flag = await resp.json()
    assert flag["visit_id"] == visit_id
    assert flag["note"] == "passes something to the camera"
    # 450 s into the call; the request itself takes well under a minute.
    assert 450.0 <= flag["offset_s"] < 510.0
    assert flag["created_by"] == world.accounts["officer_a"]

    admin = await ApiUser.sign_in(flags_client, world.emails["agency_admin"])
    resp = await admin.post(f"/api/visits/{visit_id}/flags", json={"note": "second look"})
    assert resp.status == 201, await resp.text()

    listed = await (await officer.get(f"/api/visits/{visit_id}/flags")).json()
    assert [f["note"] for f in listed] == ["passes something to the camera", "second look"]
    assert listed[0]["offset_s"] <= listed[1]["offset_s"]
    assert await flag_audit(services, visit_id) == [
        ("visit.flag", "success"),
        ("visit.flag", "success"),
    ]


async def test_flags_of_a_visit_that_just_ended_sit_at_its_end(
    flags_client: Client, world: World, services: Services
) -> None:
    ended = await started_visit(services, world, started_ago=timedelta(minutes=40))
    officer = await ApiUser.sign_in(flags_client, world.emails["officer_a"])
    resp = await officer.post(f"/api/visits/{ended}/flags", json={"note": "said goodbye oddly"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["offset_s"] == 1800.0

    long_ago = await started_visit(services, world, started_ago=timedelta(hours=3), person="pa2")
    resp = await officer.post(f"/api/visits/{long_ago}/flags", json={"note": "too late"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "flag_window_over"


async def test_flag_refusals(flags_client: Client, world: World, services: Services) -> None:
    upcoming = await add_visit(services, world, starts_in=timedelta(hours=1))
    annex = await started_visit(
        services, world, started_ago=timedelta(minutes=1), kiosk="b1-1", person="pb1"
    )
    attorney = await started_visit(
        services, world, started_ago=timedelta(minutes=1), privileged=True, person="pa2"
    )
    officer = await ApiUser.sign_in(flags_client, world.emails["officer_a"])

    resp = await officer.post(f"/api/visits/{upcoming}/flags", json={"note": "early"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "visit_not_started")
    # Another facility's visit does not exist for this officer.
    assert (await officer.post(f"/api/visits/{annex}/flags", json={"note": "x"})).status == 404
    assert (await officer.get(f"/api/visits/{annex}/flags")).status == 404
    assert (await officer.post("/api/visits/999999/flags", json={"note": "x"})).status == 404
    assert (await officer.post(f"/api/visits/{annex}/flags", json={"note": ""})).status == 422
    too_long = {"note": "x" * 1001}
    assert (await officer.post(f"/api/visits/{upcoming}/flags", json=too_long)).status == 422

    resp = await officer.post(f"/api/visits/{attorney}/flags", json={"note": "privileged"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "privileged_visit")
    assert await flag_audit(services, attorney) == [("visit.flag", "failure")]

    visitor = await ApiUser.sign_in(flags_client, world.emails["visitor"])
    assert (await visitor.post(f"/api/visits/{annex}/flags", json={"note": "x"})).status == 403
    assert (await visitor.get(f"/api/visits/{annex}/flags")).status == 403
    assert await flag_audit(services, upcoming) == []
    assert await flag_audit(services, annex) == []


async def test_flags_are_stored_on_both_engines(tmp_path: Path, db_url: str) -> None:
    services = build_services(make_settings(tmp_path, db_url), passwords=fast_passwords())
    try:
        world = await build_world(services)
        visit_id = await started_visit(services, world, started_ago=timedelta(minutes=5))
        async with services.read() as s:
            officer = await s.get(Account, world.accounts["officer_a"])
            assert officer is not None
        principal = Principal(
            role="officer",
            account_id=officer.id,
            agency_id=officer.agency_id,
            facility_id=officer.facility_id,
        )
        flag = await flag_visit(services, principal, FlagRequest(visit_id, "looked away"))
        assert 300.0 <= flag.offset_s < 360.0
        assert [f.id for f in await list_flags(services, principal, visit_id)] == [flag.id]
        other = Principal(role="officer", account_id=officer.id, agency_id=0, facility_id=0)
        with pytest.raises(NotFound):
            await flag_visit(services, other, FlagRequest(visit_id, "not mine"))
        async with services.write() as s:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            visit.privileged = True
        with pytest.raises(Forbidden):
            await flag_visit(services, principal, FlagRequest(visit_id, "attorney"))
        async with services.write() as s:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            visit.privileged, visit.state = False, "cancelled"
        with pytest.raises(Conflict):
            await flag_visit(services, principal, FlagRequest(visit_id, "cancelled"))
    finally:
        await services.db.close()
