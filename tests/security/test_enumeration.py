"""Nobody learns who is in custody or who has an account by asking: approvals name people only
by a directory handle, sign-up and lockout answer the same for every address, and reset mail
is limited per account (ASVS 6.3.8, 6.3.5, 6.4.x)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, ApiUser, World
from tests.store_helpers import ManualClock, mail_to
from vvserver.app import build_services, create_app
from vvserver.db.models import Account, Approval, AuditEntry
from vvserver.domain.people.directory_handles import issue_handle
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def find(visitor: ApiUser, world: World, last_name: str, number: str) -> list[Any]:
    path = f"/api/facilities/{world.facility_a}/directory"
    resp = await visitor.get(path, params={"last_name": last_name, "booking_number": number})
    assert resp.status == 200, await resp.text()
    found: list[Any] = await resp.json()
    return found


async def test_a_visitor_cannot_name_a_person_by_database_id(
    client: Client, services: Services, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    for person in ("pa2", "pb1", "pc1"):  # any facility, any agency
        resp = await visitor.post(
            "/api/approvals", json={"person_id": world.persons[person], "relationship": "cousin"}
        )
        assert resp.status == 422
        assert "first_name" not in await resp.text()
    async with services.read() as s:
        assert await s.scalar(select(func.count()).select_from(Approval)) == 3  # the world's


async def test_approval_requests_take_only_this_visitors_fresh_directory_handle(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    forged = issue_handle(
        b"not the server secret",
        person_id=world.persons["pa2"],
        visitor_id=world.accounts["visitor2"],
        now=clock.now(),
    )
    someone_elses = issue_handle(
        services.secret,
        person_id=world.persons["pa2"],
        visitor_id=world.accounts["visitor"],
        now=clock.now(),
    )
    for handle, code in (
        ("x" * 40, "directory_handle_invalid"),
        (forged, "directory_handle_invalid"),
        (someone_elses, "directory_handle_invalid"),
    ):
        resp = await visitor.post("/api/approvals", json={"handle": handle, "relationship": "x"})
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == code

    [entry] = await find(visitor, world, "doe", "a-1002")
    assert set(entry) == {"handle", "facility_id", "last_name", "booking_number"}
    # Opaque: sealed bytes, not the database id (which no answer carries any more).
    assert not entry["handle"].isdigit()
    assert len(entry["handle"]) >= 32
    clock.moment += timedelta(minutes=31)
    resp = await visitor.post(
        "/api/approvals", json={"handle": entry["handle"], "relationship": "x"}
    )
    assert (await resp.json())["error"]["code"] == "directory_handle_expired"

    [entry] = await find(visitor, world, "Doe", "A-1002")
    resp = await visitor.post(
        "/api/approvals", json={"handle": entry["handle"], "relationship": "cousin"}
    )
    assert resp.status == 201, await resp.text()
    request = await resp.json()
    # Nothing about the person beyond what the visitor typed comes back before approval.
    assert request["person"] == {
        "id": None,
        "first_name": None,
        "last_name": "Doe",
        "booking_number": "A-1002",
    }
    mine = await (await visitor.get("/api/approvals", params={"status": "requested"})).json()
    assert [a["person"]["first_name"] for a in mine] == [None]
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    queue = await (await admin.get("/api/approvals", params={"status": "requested"})).json()
    assert [(a["id"], a["person"]["first_name"]) for a in queue] == [(request["id"], "PA2")]
    resp = await admin.post(
        f"/api/approvals/{request['id']}/decision", json={"decision": "approved"}
    )
    assert resp.status == 200
    mine = await (await visitor.get("/api/approvals", params={"status": "approved"})).json()
    assert {(a["person"]["id"], a["person"]["first_name"]) for a in mine} == {
        (world.persons["pa1"], "PA1"),
        (world.persons["pa2"], "PA2"),
    }


SIGNUP = {
    "password": "a long passphrase",
    "name": "Maria",
    "date_of_birth": "1990-02-03",
    "phone": "+1 555 0199",
}


async def test_sign_up_answers_the_same_for_a_taken_address_and_tells_its_owner(
    client: Client, services: Services, world: World
) -> None:
    new = await client.post("/api/auth/signup", json={**SIGNUP, "email": "maria@example.com"})
    taken = await client.post("/api/auth/signup", json={**SIGNUP, "email": "Visitor@Example.net"})

    assert (new.status, taken.status) == (202, 202)
    assert set(await new.json()) == set(await taken.json()) == {"email"}
    [verify] = await mail_to(services, "maria@example.com")
    assert verify.kind == "verify_email"
    [notice] = await mail_to(services, world.emails["visitor"])
    assert notice.kind == "signup_existing"
    assert "already has one" in notice.body
    async with services.read() as s:
        owners = await s.scalar(
            select(func.count()).select_from(Account).where(Account.email == "visitor@example.net")
        )
        assert owners == 1
        account = await s.get(Account, world.accounts["visitor"])
        assert account is not None
        assert services.passwords.verify(account.password_hash, PASSWORD)


async def failing_logins(client: Client, email: str, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        resp = await client.post("/api/auth/login", json={"email": email, "password": "nope"})
        statuses.append(resp.status)
    return statuses


async def test_lockout_answers_the_same_for_unknown_addresses(
    client: Client, services: Services, world: World
) -> None:
    real = world.emails["officer_a"]
    unknown = "nobody-here@example.org"
    assert await failing_logins(client, real, 6) == [401] * 5 + [423]
    assert await failing_logins(client, unknown, 6) == [401] * 5 + [423]
    answers = []
    for email in (real, unknown):
        resp = await client.post("/api/auth/login", json={"email": email, "password": "nope"})
        body = await resp.json()
        answers.append((resp.status, body["error"]["code"], set(body["error"]["details"])))
    assert answers[0] == answers[1] == (423, "locked", {"locked_until"})
    # An inactive account is locked the same way.
    async with services.write() as s:
        account = await s.get(Account, world.accounts["officer_b"])
        assert account is not None
        account.active = False
    assert await failing_logins(client, world.emails["officer_b"], 6) == [401] * 5 + [423]


async def test_the_owner_of_a_locked_account_can_lift_the_lock_by_the_emailed_link(
    client: Client, services: Services, world: World
) -> None:
    email = world.emails["visitor"]
    await failing_logins(client, email, 5)
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 423
    [mail] = await mail_to(services, email, "account_locked")
    assert "Anyone who knows your e-mail address" in mail.body
    link = mail.body.split("http://127.0.0.1:8080")[1].split()[0]
    assert link.startswith("/unlock-account?token=")
    token = link.split("token=")[1]
    page = await client.get(link)
    assert page.status == 200
    assert "text/html" in page.headers["Content-Type"]

    assert (await client.post("/api/auth/unlock", json={"token": token})).status == 204
    assert (await client.post("/api/auth/unlock", json={"token": token})).status == 422
    await ApiUser.sign_in(client, email)
    # A lock on an address without an account e-mails nobody.
    await failing_logins(client, "nobody-here@example.org", 6)
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert actions.count("auth.lockout") == 2
    assert "account.unlock" in actions


async def test_reset_links_are_limited_per_account_whoever_asks(
    client: Client, services: Services, world: World
) -> None:
    email = world.emails["visitor"]
    for _ in range(5):  # the per-address limit is high in tests: this is the account's own
        resp = await client.post("/api/auth/password-reset", json={"email": email})
        assert resp.status == 202
    assert len(await mail_to(services, email, "password_reset")) == 3
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert actions.count("account.password_reset_throttled") == 2


async def test_unknown_addresses_lock_on_both_database_engines(
    aiohttp_client: AiohttpClient, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path / "data", db_url)
    services = build_services(settings, passwords=fast_passwords())
    try:
        client = await aiohttp_client(create_app(settings, services=services, workers=[]))
        assert await failing_logins(client, "nobody-here@example.org", 6) == [401] * 5 + [423]
    finally:
        await services.db.close()
