"""An officer ends a visit over HTTP, reads its call quality; an admin reads media metrics."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.factories import ApiUser, World, add_visit
from tests.store_helpers import visit_reason, visit_states
from vvserver.db.models import AuditEntry
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def test_officer_terminates_a_visit_with_a_reason(
    client: Client, world: World, services: Services
) -> None:
    visit_id = await add_visit(services, world, starts_in=timedelta(minutes=-1), state="ready")
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(f"/api/visits/{visit_id}/terminate", json={"reason": ""})
    assert resp.status == 422
    elsewhere = await ApiUser.sign_in(client, world.emails["officer_b"])
    resp = await elsewhere.post(f"/api/visits/{visit_id}/terminate", json={"reason": "x"})
    assert resp.status == 404
    resp = await officer.post(
        f"/api/visits/{visit_id}/terminate", json={"reason": "contraband shown on camera"}
    )
    assert resp.status == 204, await resp.text()
    assert await visit_states(services, visit_id) == ["terminated"]
    assert "contraband shown on camera" in (await visit_reason(services, visit_id) or "")
    async with services.read() as s:
        audited = (
            (await s.execute(select(AuditEntry).where(AuditEntry.target == f"visit:{visit_id}")))
            .scalars()
            .all()
        )
    assert [a.action for a in audited] == ["visit.terminate"]
    resp = await officer.post(f"/api/visits/{visit_id}/terminate", json={"reason": "again"})
    assert resp.status == 409


async def test_quality_of_a_visit_without_a_call_and_metrics(
    client: Client, world: World, services: Services
) -> None:
    visit_id = await add_visit(services, world, starts_in=timedelta(minutes=-1), state="ready")
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    quality = await (await officer.get(f"/api/visits/{visit_id}/quality")).json()
    assert quality == {"visit_id": visit_id, "call_open": False, "monitors": 0, "participants": []}
    assert (await officer.get("/api/metrics")).status == 403
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    metrics = await (await admin.get("/api/metrics")).json()
    assert metrics["rooms_open"] == 0
    assert "frames_forwarded" in metrics
    # The process's own figures, for leak checks (scripts/soak_calls.py).
    assert metrics["asyncio_tasks"] > 0
    assert metrics["websockets_open"] == 0
    assert metrics["open_fds"] > 0
    assert metrics["rss_bytes"] > 10 * 1024 * 1024
