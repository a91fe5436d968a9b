"""A visitor asks to visit a person; the facility's admins are e-mailed, decide, and the visitor
hears the decision. Approval needs a verified e-mail and ID and no ban in force."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, add_visit, build_world, directory_handle
from tests.store_helpers import mail_to, visit_reason, visit_states
from vvserver.app import build_services, create_app
from vvserver.db.models import Account, Approval, AuditEntry
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def set_id_status(services: Services, world: World, key: str, status: str) -> None:
    async with services.write() as s:
        account = await s.get(Account, world.accounts[key])
        assert account is not None
        account.id_status = status


async def test_request_is_emailed_to_admins_decided_and_the_visitor_is_told(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    handle = await directory_handle(visitor, world, "pa2")
    resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "cousin"})
    assert resp.status == 201, await resp.text()
    request = await resp.json()
    assert request["status"] == "requested"
    assert request["professional"] == "none"
    assert request["person"]["booking_number"] == "A-1002"
    assert request["person"]["first_name"] is None  # not before approval
    [mail] = await mail_to(services, world.emails["admin_a"], "approval_requested")
    assert "Visitor2" in mail.body
    assert "A-1002" in mail.body
    assert await mail_to(services, world.emails["admin_b"]) == []
    resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "cousin"})
    assert resp.status == 409
    # The queue shows what the admin needs to decide.
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    queue = await (await admin.get("/api/approvals", params={"status": "requested"})).json()
    assert [a["id"] for a in queue] == [request["id"]]
    assert queue[0]["visitor"] == {
        "id": world.accounts["visitor2"],
        "name": "Visitor2",
        "email_verified": True,
        "id_status": "verified",
        "has_id_photo": False,
        "banned": False,
    }
    officer_b = await ApiUser.sign_in(client, world.emails["officer_b"])
    assert (
        await (await officer_b.get("/api/approvals", params={"status": "requested"})).json() == []
    )
    resp = await admin.post(
        f"/api/approvals/{request['id']}/decision", json={"decision": "approved"}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "approved"
    [decision] = await mail_to(services, world.emails["visitor2"], "approval_decision")
    assert "approved to visit PA2 Doe" in decision.body
    resp = await admin.post(
        f"/api/approvals/{request['id']}/decision", json={"decision": "denied", "reason": "late"}
    )
    assert resp.status == 409
    # Visitors see their own approvals only.
    mine = await (await visitor.get("/api/approvals")).json()
    assert {a["person"]["id"] for a in mine} == {world.persons["pa1"], world.persons["pa2"]}
    assert {a["visitor"]["id"] for a in mine} == {world.accounts["visitor2"]}
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert "approval.request" in actions
    assert "approval.decide" in actions


async def test_approval_is_refused_while_the_visitor_is_banned(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    handle = await directory_handle(visitor, world, "pa2")
    resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "friend"})
    approval_id = (await resp.json())["id"]
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    ends_at = (services.clock.now() + timedelta(days=30)).isoformat()
    resp = await admin.post(
        f"/api/facilities/{world.facility_a}/bans",
        json={"visitor_id": world.accounts["visitor2"], "reason": "Threats", "ends_at": ends_at},
    )
    assert resp.status == 201
    queue = await (await admin.get("/api/approvals", params={"status": "requested"})).json()
    assert queue[0]["visitor"]["banned"] is True
    path = f"/api/approvals/{approval_id}/decision"
    resp = await admin.post(path, json={"decision": "approved"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "visitor_banned"
    # Nor can a banned visitor ask for another person at that facility.
    async with services.write() as s:
        row = await s.scalar(select(Approval).where(Approval.id == approval_id))
        assert row is not None
        await s.delete(row)
    resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "friend"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "visitor_banned"


async def test_unverified_visitors_cannot_be_approved_and_denials_carry_a_reason(
    client: Client, world: World, services: Services
) -> None:
    newcomer = await ApiUser.sign_in(client, world.emails["newcomer"])
    body = {"handle": await directory_handle(newcomer, world, "pa2"), "relationship": "brother"}
    resp = await newcomer.post("/api/approvals", json=body)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "email_unverified"
    await set_id_status(services, world, "visitor2", "pending")
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    body = {"handle": await directory_handle(visitor, world, "pa2"), "relationship": "brother"}
    approval_id = (await (await visitor.post("/api/approvals", json=body)).json())["id"]
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/approvals/{approval_id}/decision"
    resp = await admin.post(path, json={"decision": "approved"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "id_not_verified"
    assert (await admin.post(path, json={"decision": "denied"})).status == 422
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.post(path, json={"decision": "denied", "reason": "x"})).status == 403
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.post(path, json={"decision": "denied", "reason": "x"})).status == 404
    resp = await admin.post(path, json={"decision": "denied", "reason": "Not on the visitor list"})
    assert (await resp.json())["status"] == "denied"
    [mail] = await mail_to(services, world.emails["visitor2"], "approval_decision")
    assert "Not on the visitor list" in mail.body
    mine = await (await visitor.get("/api/approvals", params={"status": "denied"})).json()
    assert mine[0]["reason"] == "Not on the visitor list"
    # Asking again right away is refused; a month later it is allowed.
    resp = await visitor.post("/api/approvals", json=body)
    assert (await resp.json())["error"]["code"] == "request_too_soon"
    async with services.write() as s:
        row = await s.get(Approval, approval_id)
        assert row is not None
        assert row.decided_at is not None
        row.decided_at -= timedelta(days=31)
    resp = await visitor.post("/api/approvals", json=body)
    assert resp.status == 201
    assert (await resp.json())["id"] == approval_id


async def test_attorneys_give_a_bar_number_and_get_professional_approvals(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    body = {
        "handle": await directory_handle(visitor, world, "pa2"),
        "relationship": "counsel",
        "professional": "attorney",
    }
    assert (await visitor.post("/api/approvals", json=body)).status == 422
    resp = await visitor.post(
        "/api/approvals", json={**body, "professional": "clergy", "bar_number": "NY-1"}
    )
    assert resp.status == 422
    resp = await visitor.post("/api/approvals", json={**body, "bar_number": "NY-123456"})
    assert resp.status == 201
    approval = await resp.json()
    assert approval["professional"] == "attorney"
    assert approval["bar_number"] == "NY-123456"
    # A person released since the search cannot be asked for.
    handle = await directory_handle(visitor, world, "pa1")
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    assert (await admin.post(f"/api/persons/{world.persons['pa1']}/release", json={})).status == 200
    resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "x"})
    assert resp.status == 404


async def test_revoking_an_approval_cancels_visits_with_that_person(
    client: Client, world: World, services: Services
) -> None:
    with_pa1 = await add_visit(services, world, person="pa1", kiosk="a1-1")
    with_pb1 = await add_visit(services, world, person="pb1", kiosk="b1-1")
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    approvals = await (await admin.get("/api/approvals", params={"status": "approved"})).json()
    [approval] = [a for a in approvals if a["visitor"]["id"] == world.accounts["visitor"]]
    path = f"/api/approvals/{approval['id']}/revoke"
    assert (await admin.post(path, json={})).status == 422
    resp = await admin.post(path, json={"reason": "Person asked to remove this visitor"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["approval"]["status"] == "revoked"
    assert body["cancelled_visits"] == 1
    assert await visit_states(services, with_pa1, with_pb1) == ["cancelled", "scheduled"]
    assert "Person asked to remove" in ((await visit_reason(services, with_pa1)) or "")
    assert len(await mail_to(services, world.emails["visitor"], "approval_revoked")) == 1
    assert len(await mail_to(services, world.emails["visitor"], "visit_cancelled")) == 1
    assert (await admin.post(path, json={"reason": "again"})).status == 409
    admin_c = await ApiUser.sign_in(client, world.emails["admin_c"])
    assert (await admin_c.post(path, json={"reason": "x"})).status == 404


async def test_the_roster_and_approval_story_runs_on_both_database_engines(
    aiohttp_client: AiohttpClient, tmp_path: Path, db_url: str
) -> None:
    """Row locks (FOR UPDATE OF), scope subqueries and unique checks on SQLite and PostgreSQL."""
    settings = make_settings(tmp_path / "data", db_url)
    services = build_services(settings, passwords=fast_passwords())
    try:
        world = await build_world(services)
        client = await aiohttp_client(create_app(settings, services=services, workers=[]))
        booked = await add_visit(services, world, person="pa1", visitor="visitor")
        admin = await ApiUser.sign_in(client, world.emails["admin_a"])
        person = {"booking_number": "A-1002", "first_name": "X", "last_name": "Y"}
        resp = await admin.post(
            f"/api/facilities/{world.facility_a}/persons",
            json={**person, "unit_id": world.unit_a1},
        )
        assert resp.status == 409
        assert (await admin.get("/api/persons/2147483648")).status == 404
        found = await admin.get(f"/api/facilities/{world.facility_a}/persons", params={"q": "do"})
        assert len(await found.json()) == 2
        visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
        handle = await directory_handle(visitor, world, "pa2")
        resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "aunt"})
        assert resp.status == 201
        queue = await (await admin.get("/api/approvals", params={"status": "requested"})).json()
        assert len(queue) == 1
        assert (await admin.get(f"/api/visitors/{world.accounts['visitor2']}")).status == 200
        ends_at = (services.clock.now() + timedelta(days=7)).isoformat()
        resp = await admin.post(
            f"/api/facilities/{world.facility_a}/bans",
            json={"visitor_id": world.accounts["visitor"], "reason": "r", "ends_at": ends_at},
        )
        assert (await resp.json())["cancelled_visits"] == 1
        assert await visit_states(services, booked) == ["cancelled"]
        resp = await admin.post(
            f"/api/persons/{world.persons['pa1']}/transfer",
            json={"facility_id": world.facility_b, "unit_id": world.unit_b1, "reason": "move"},
        )
        assert resp.status == 200
        staff = await (await admin.get("/api/staff")).json()
        assert len(staff) == 2
    finally:
        await services.db.close()
