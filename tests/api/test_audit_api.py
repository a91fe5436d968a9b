"""Administrators read the audit log of their own scope and verify its hash chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, build_world, started_visit
from vvserver.app import build_services, create_app
from vvserver.db.models import AuditEntry
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


@dataclass
class Logged:
    client: Client
    services: Services
    world: World
    visit_a: int
    visit_b: int


async def append(services: Services, **fields: Any) -> None:
    async with services.write() as s:
        await services.audit.append(
            s, AuditRecord(outcome="success", **fields), services.clock.now()
        )


@pytest.fixture
async def logged(
    aiohttp_client: AiohttpClient, tmp_path: Path, db_url: str
) -> AsyncIterator[Logged]:
    """Entries about facility A, facility B and the other agency's facility C."""
    services = build_services(make_settings(tmp_path / "data", db_url), passwords=fast_passwords())
    try:
        world = await build_world(services)
        visit_a = await started_visit(services, world, started_ago=timedelta(minutes=5))
        visit_b = await started_visit(
            services, world, started_ago=timedelta(minutes=5), kiosk="b1-1", person="pb1"
        )
        acc = world.accounts
        await append(
            services,
            actor=f"officer:{acc['officer_a']}",
            action="visit.flag",
            target=f"visit:{visit_a}",
        )
        await append(
            services,
            actor=f"officer:{acc['officer_b']}",
            action="visit.flag",
            target=f"visit:{visit_b}",
        )
        await append(
            services,
            actor=f"facility_admin:{acc['admin_c']}",
            action="kiosk.rotate",
            target=f"kiosk:{world.kiosks['c1-1']}",
        )
        await append(
            services,
            actor=f"agency_admin:{acc['agency_admin']}",
            action="facility.update",
            target=f"facility:{world.facility_a}",
            details={"name": "Main jail"},
        )
        await append(services, actor="anonymous@127.0.0.1", action="auth.login", target=None)
        client = await aiohttp_client(create_app(services.settings, services=services, workers=[]))
        yield Logged(client, services, world, visit_a, visit_b)
    finally:
        await services.db.close()


async def entries(user: ApiUser, **params: Any) -> dict[str, Any]:
    resp = await user.get("/api/audit", params=params)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_each_admin_reads_the_entries_of_their_scope(logged: Logged) -> None:
    world = logged.world
    admin_a = await ApiUser.sign_in(logged.client, world.emails["admin_a"])
    seen = await entries(admin_a, limit=200)
    about = {(e["action"], e["target"]) for e in seen["items"]}
    assert ("visit.flag", f"visit:{logged.visit_a}") in about
    assert ("facility.update", f"facility:{world.facility_a}") in about
    assert ("visit.flag", f"visit:{logged.visit_b}") not in about
    assert all(e["facility_id"] == world.facility_a for e in seen["items"])
    assert seen["next_before_id"] is None
    flag = next(e for e in seen["items"] if e["action"] == "visit.flag")
    assert flag["actor_id"] == world.accounts["officer_a"]
    assert flag["actor_email"] == world.emails["officer_a"]
    update_entry = next(e for e in seen["items"] if e["action"] == "facility.update")
    assert update_entry["detail"] == {"name": "Main jail"}
    ids = [e["id"] for e in seen["items"]]
    assert ids == sorted(ids, reverse=True)

    agency = await ApiUser.sign_in(logged.client, world.emails["agency_admin"])
    flags = await entries(agency, action="visit.flag")
    assert {e["target"] for e in flags["items"]} == {
        f"visit:{logged.visit_a}",
        f"visit:{logged.visit_b}",
    }
    everything = await entries(agency, limit=200)
    actions = {e["action"] for e in everything["items"]}
    assert "kiosk.rotate" not in actions  # the other agency's
    assert not any(e["actor"].startswith("anonymous") for e in everything["items"])

    only_b = await entries(agency, facility_id=world.facility_b, action="visit.")
    assert [e["target"] for e in only_b["items"]] == [f"visit:{logged.visit_b}"]
    by_actor = await entries(agency, actor_id=world.accounts["officer_b"])
    assert {e["target"] for e in by_actor["items"]} == {f"visit:{logged.visit_b}"}

    other = await ApiUser.sign_in(logged.client, world.emails["admin_c"])
    theirs = await entries(other, action="kiosk.rotate")
    assert [e["target"] for e in theirs["items"]] == [f"kiosk:{world.kiosks['c1-1']}"]
    assert (await admin_a.get("/api/audit", params={"facility_id": world.facility_b})).status == 404


async def test_pages_continue_with_before_id(logged: Logged) -> None:
    agency = await ApiUser.sign_in(logged.client, logged.world.emails["agency_admin"])
    first = await entries(agency, limit=2)
    assert len(first["items"]) == 2
    assert first["next_before_id"] == first["items"][-1]["id"]
    second = await entries(agency, limit=2, before_id=first["next_before_id"])
    assert all(e["id"] < first["next_before_id"] for e in second["items"])
    together = await entries(agency, limit=4)
    assert [e["id"] for e in together["items"]] == [
        e["id"] for e in first["items"] + second["items"]
    ]


async def test_verification_finds_a_tampered_entry(logged: Logged) -> None:
    admin = await ApiUser.sign_in(logged.client, logged.world.emails["admin_a"])
    resp = await admin.post("/api/audit/verify")
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["ok"] is True
    assert result["problems"] == []
    assert result["checked"] >= 6  # the five entries above and the sign-in

    async with logged.services.write() as s:
        await s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone"))
    broken = await (await admin.post("/api/audit/verify")).json()
    assert broken["ok"] is False
    assert broken["first_broken_id"] == 2
    assert broken["problems"] == ["entry content does not match its hash"]

    checks = await entries(admin, action="audit.verify")
    assert [e["outcome"] for e in checks["items"]] == ["failure", "success"]


async def test_only_administrators_read_the_log(logged: Logged) -> None:
    for key in ("officer_a", "visitor"):
        user = await ApiUser.sign_in(logged.client, logged.world.emails[key])
        assert (await user.get("/api/audit")).status == 403
        assert (await user.post("/api/audit/verify")).status == 403
    admin = await ApiUser.sign_in(logged.client, logged.world.emails["admin_a"])
    for bad in ({"limit": 0}, {"action": "DROP TABLE"}, {"before_id": "x"}, {"extra": 1}):
        assert (await admin.get("/api/audit", params=bad)).status == 422, bad
