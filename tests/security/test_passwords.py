"""Passwords made of the account's context words are refused with a clear code (ASVS 6.2.11)."""

from __future__ import annotations

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from tests.factories import PASSWORD, ApiUser, World
from tests.store_helpers import mail_to
from vvserver.domain.accounts.password_policy import context_words
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]
VISITOR = {"name": "Maria", "date_of_birth": "1990-02-03", "phone": "+1 555 0199"}


async def error_code(resp: ClientResponse) -> str:
    code: str = (await resp.json())["error"]["code"]
    return code


def test_the_context_words_are_the_documented_ones() -> None:
    assert context_words(
        email="Maria.Lopez+visits@Mail.Example.org", names=["Demo County Jail", "Demo County"]
    ) == [
        "vvserver",
        "marialopezvisits",
        "maria",
        "lopez",
        "visits",
        "mailexampleorg",
        "mail",
        "example",
        "democountyjail",
        "demo",
        "county",
        "jail",
        "democounty",
    ]


async def test_sign_up_refuses_the_product_name_and_the_email_address(client: Client) -> None:
    email = "maria.lopez@example.com"
    for password in (
        "my vvserver password",
        "Lopez-and-family-2026",
        "example.com is my mail",
        "MariaLopez1990!",
    ):
        resp = await client.post(
            "/api/auth/signup", json={**VISITOR, "email": email, "password": password}
        )
        assert resp.status == 422, password
        assert await error_code(resp) == "weak_password_context"
    resp = await client.post(
        "/api/auth/signup", json={**VISITOR, "email": email, "password": "a long passphrase"}
    )
    assert resp.status == 202


async def test_staff_passwords_may_not_name_their_facility_or_agency(
    client: Client, world: World
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    new = {
        "email": "new.officer@example.org",
        "name": "New Officer",
        "role": "officer",
        "facility_id": world.facility_a,
    }
    for password in ("DemoCountyJail#1", "welcome to the jail", "county of demo 99"):
        resp = await admin.post("/api/staff", json={**new, "password": password})
        assert resp.status == 422, password
        assert await error_code(resp) == "weak_password_context"
    resp = await admin.post("/api/staff", json={**new, "password": "a long passphrase"})
    assert resp.status == 201

    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "demo county forever"},
    )
    assert resp.status == 422
    assert await error_code(resp) == "weak_password_context"


async def test_a_reset_password_is_checked_against_the_accounts_words(
    client: Client, services: Services, world: World
) -> None:
    email = world.emails["officer_a"]
    await client.post("/api/auth/password-reset", json={"email": email})
    [mail] = await mail_to(services, email, "password_reset")
    token = mail.body.split("token=")[1].split()[0]
    resp = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "officer_a at jail"}
    )
    assert resp.status == 422
    assert await error_code(resp) == "weak_password_context"
    # The refusal did not use up the link.
    resp = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "a long passphrase"}
    )
    assert resp.status == 204
