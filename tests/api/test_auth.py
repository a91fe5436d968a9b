"""A visitor signs up, confirms the e-mail, signs in and out; staff are locked out on failures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, ApiUser, World
from vvserver.app import build_services, create_app
from vvserver.db.models import EmailToken, Notification, Session
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def test_visitor_signs_up_confirms_email_and_signs_in(
    client: Client, services: Services
) -> None:
    resp = await client.post(
        "/api/auth/signup",
        json={
            "email": "Maria@Example.com",
            "password": "a long passphrase",
            "name": "Maria",
            "date_of_birth": "1990-02-03",
            "phone": "+1 555 0199",
        },
    )
    assert resp.status == 202, await resp.text()
    assert await resp.json() == {"email": "maria@example.com"}
    async with services.read() as s:
        note = (await s.execute(select(Notification))).scalar_one()
        assert note.to_email == "maria@example.com"
        token = note.body.split("token=")[1].split()[0]
        assert (await s.execute(select(EmailToken))).scalar_one().token_hash != token
    resp = await client.post("/api/auth/verify-email", json={"token": token})
    assert resp.status == 204
    resp = await client.post("/api/auth/verify-email", json={"token": token})
    assert resp.status == 422
    user = await ApiUser.sign_in(client, "maria@example.com", "a long passphrase")
    me = await (await user.get("/api/auth/session")).json()
    assert me["account"]["email"] == "maria@example.com"
    assert me["account"]["email_verified"] is True
    assert (await user.post("/api/auth/logout")).status == 204
    assert (await user.get("/api/auth/session")).status == 401


async def test_minors_and_weak_passwords_are_refused(client: Client) -> None:
    base = {
        "email": "kid@example.com",
        "password": "a long passphrase",
        "name": "Kid",
        "phone": "+1 555 0199",
    }
    resp = await client.post("/api/auth/signup", json={**base, "date_of_birth": "2015-01-01"})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "underage"
    resp = await client.post(
        "/api/auth/signup", json={**base, "password": "short", "date_of_birth": "1990-01-01"}
    )
    assert (await resp.json())["error"]["code"] == "weak_password"


async def test_five_failures_lock_the_account_for_fifteen_minutes(
    client: Client, world: World
) -> None:
    email = world.emails["officer_a"]
    for _ in range(5):
        resp = await client.post("/api/auth/login", json={"email": email, "password": "nope"})
        assert resp.status == 401
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 423
    assert (await resp.json())["error"]["code"] == "locked"


async def test_state_changes_need_the_csrf_token(client: Client, world: World) -> None:
    user = await ApiUser.sign_in(client, world.emails["visitor"])
    user.csrf = "wrong"
    resp = await user.post("/api/auth/logout")
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf_failed"


async def test_login_attempts_are_rate_limited_per_client(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url).model_copy(update={"rate_login_per_min": 3})
    services = build_services(settings, passwords=fast_passwords())
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    statuses = [
        (await client.post("/api/auth/login", json={"email": "x@y.z", "password": "p"})).status
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_password_reset_link_sets_a_new_password_and_ends_sessions(
    client: Client, world: World, services: Services
) -> None:
    email = world.emails["visitor"]
    old = await ApiUser.sign_in(client, email)
    resp = await client.post("/api/auth/password-reset", json={"email": email})
    assert resp.status == 202
    resp = await client.post("/api/auth/password-reset", json={"email": "nobody@example.org"})
    assert resp.status == 202
    async with services.read() as s:
        notes = (await s.execute(select(Notification))).scalars().all()
    assert [n.to_email for n in notes] == [email]
    token = notes[0].body.split("token=")[1].split()[0]
    resp = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "a brand new secret"}
    )
    assert resp.status == 204
    assert (await old.get("/api/auth/session")).status == 401
    await ApiUser.sign_in(client, email, "a brand new secret")


async def test_staff_sessions_end_after_thirty_idle_minutes(
    client: Client, world: World, services: Services
) -> None:
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    async with services.write() as s:
        for sess in (await s.execute(select(Session))).scalars():
            sess.last_seen_at = services.clock.now() - timedelta(minutes=31)
    assert (await officer.get("/api/auth/session")).status == 401
    assert (await visitor.get("/api/auth/session")).status == 200
