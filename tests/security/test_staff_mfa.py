"""Staff sign in with a second factor (TOTP): enrolment, codes, replay, recovery, lockout, reset.

The World's administrators are enrolled with ``TOTP_SECRET``; its officers work at facilities
that do not require MFA for officers until a test switches the setting on. The server clock is
frozen (``clock``), so a test chooses which 30-second step a code belongs to.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, TOTP_SECRET, ApiUser, World, build_world
from tests.store_helpers import ManualClock
from vvserver.app import ROUTERS, build_services, create_app
from vvserver.cli import main
from vvserver.db.models import Account, AuditEntry, MfaRecoveryCode
from vvserver.domain.accounts import totp
from vvserver.domain.services import Services
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Every story here on SQLite and on PostgreSQL (row locks, the pending-login table)."""
    return make_settings(tmp_path / "data", db_url)


class Pending:
    """A browser between the password and the second factor: it holds only the vv_mfa cookie."""

    def __init__(self, client: Client, body: dict[str, Any], cookie: str) -> None:
        self.client = client
        self.body = body
        self.cookie = cookie

    @classmethod
    async def after_password(cls, client: Client, email: str, password: str = PASSWORD) -> Pending:
        resp = await client.post("/api/auth/login", json={"email": email, "password": password})
        assert resp.status == 202, await resp.text()
        body = await resp.json()
        assert body["mfa_required"] is True
        assert "vv_session" not in resp.cookies
        morsel = resp.cookies["vv_mfa"]
        assert morsel["httponly"]
        assert morsel["path"] == "/api/auth/mfa"
        assert morsel["samesite"] == "Strict"
        client.session.cookie_jar.clear()
        return cls(client, body, morsel.value)

    @property
    def stage(self) -> str:
        return str(self.body["stage"])

    def headers(self) -> dict[str, str]:
        return {"Cookie": f"vv_mfa={self.cookie}", "X-CSRF-Token": self.body["csrf_token"]}

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.client.post(path, json=json, headers=self.headers())

    async def finish(self, path: str, json: Any) -> ApiUser:
        """Send the last step; return the signed-in user its answer carries."""
        resp = await self.post(path, json)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        user = ApiUser(self.client)
        user.csrf = (body.get("session") or body)["csrf_token"]
        user.cookies = {"vv_session": resp.cookies["vv_session"].value}
        user.last_body = body  # type: ignore[attr-defined]
        self.client.session.cookie_jar.clear()
        return user


def code(secret: str, clock: ManualClock, steps: int = 0) -> str:
    """The authenticator's code at the server's time, ``steps`` 30-second steps later."""
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps))


async def audit_actions(services: Services, prefix: str) -> list[tuple[str, str, str | None]]:
    async with services.read() as s:
        rows = await s.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq)
        )
        return [(e.action, e.outcome, e.target) for e in rows]


async def new_admin(client: Client, world: World, email: str = "new.admin@example.org") -> int:
    """The agency administrator creates a facility administrator with no second factor yet."""
    agency = await ApiUser.sign_in(client, world.emails["agency_admin"])
    resp = await agency.post(
        "/api/staff",
        json={
            "email": email,
            "name": "New Admin",
            "role": "facility_admin",
            "facility_id": world.facility_a,
            "password": PASSWORD,
        },
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["mfa_enrolled"] is False
    return int(created["id"])


async def enrol(client: Client, pending: Pending, clock: ManualClock) -> tuple[str, ApiUser]:
    """Scan the QR code (here: read the secret) and confirm with the first code."""
    resp = await pending.post("/api/auth/mfa/enrolment")
    assert resp.status == 200, await resp.text()
    secret = (await resp.json())["secret"]
    user = await pending.finish("/api/auth/mfa/enrolment/confirm", {"code": code(secret, clock)})
    return secret, user


async def test_a_new_admin_enrols_at_first_sign_in_then_signs_in_with_codes(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    account_id = await new_admin(client, world)
    pending = await Pending.after_password(client, "new.admin@example.org")
    assert pending.stage == "enrol"
    # A reload of the enrolment page finds the pending login again.
    resp = await client.get("/api/auth/mfa", headers=pending.headers())
    assert (await resp.json())["stage"] == "enrol"
    # Nothing else before enrolment: not even the second step of an enrolled account.
    resp = await pending.post("/api/auth/mfa", {"code": "123456"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "mfa_enrolment_required")

    resp = await pending.post("/api/auth/mfa/enrolment")
    enrolment = await resp.json()
    secret = enrolment["secret"]
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/vvserver:new.admin@example.org?")
    assert f"secret={secret}" in enrolment["otpauth_uri"]
    assert "issuer=vvserver" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith("data:image/svg+xml")

    wrong = await pending.post("/api/auth/mfa/enrolment/confirm", {"code": code(secret, clock, 5)})
    assert (wrong.status, (await wrong.json())["error"]["code"]) == (401, "bad_code")
    admin = await pending.finish("/api/auth/mfa/enrolment/confirm", {"code": code(secret, clock)})
    codes = admin.last_body["recovery_codes"]  # type: ignore[attr-defined]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert (await admin.get("/api/auth/session")).status == 200
    status = await (await admin.get("/api/account/mfa")).json()
    assert status["enrolled"] is True
    assert status["required"] is True
    assert status["recovery_codes_left"] == 10
    # The pending login was used up.
    assert (await pending.post("/api/auth/mfa/enrolment")).status == 401

    # Later sign-ins ask for a code; the one used at enrolment (same step) is refused.
    await admin.post("/api/auth/logout")
    again = await Pending.after_password(client, "new.admin@example.org")
    assert again.stage == "verify"
    replay = await again.post("/api/auth/mfa", {"code": code(secret, clock)})
    assert (replay.status, (await replay.json())["error"]["code"]) == (401, "bad_code")
    clock.moment += timedelta(seconds=30)
    signed = await again.finish("/api/auth/mfa", {"code": code(secret, clock)})
    assert signed.last_body["mfa_method"] == "totp"  # type: ignore[attr-defined]

    target = f"account:{account_id}"
    assert [a for a in await audit_actions(services, "mfa.") if a[2] == target] == [
        ("mfa.enrol_start", "success", target),
        ("mfa.enrol", "failure", target),
        ("mfa.enrol", "success", target),
        ("mfa.verify", "failure", target),
        ("mfa.verify", "success", target),
    ]


async def test_a_code_is_accepted_once_and_only_near_the_server_time(
    client: Client, world: World, clock: ManualClock
) -> None:
    email = world.emails["admin_a"]
    first = await Pending.after_password(client, email)
    await first.finish("/api/auth/mfa", {"code": code(TOTP_SECRET, clock)})
    # The same code on a second sign-in (a shoulder-surfed or phished code) is refused.
    second = await Pending.after_password(client, email)
    replay = await second.post("/api/auth/mfa", {"code": code(TOTP_SECRET, clock)})
    assert replay.status == 401
    # A code lives 30 seconds (VV_MFA_TOTP_WINDOW=0): the previous and the next one are refused.
    for steps in (-1, 1):
        stale = await second.post("/api/auth/mfa", {"code": code(TOTP_SECRET, clock, steps)})
        assert stale.status == 401
    # Thirty seconds later the new code works.
    clock.moment += timedelta(seconds=30)
    await second.finish("/api/auth/mfa", {"code": code(TOTP_SECRET, clock)})


async def test_recovery_codes_work_once_and_new_ones_replace_them(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    email = world.emails["admin_a"]
    admin = await ApiUser.sign_in(client, email)
    clock.moment += timedelta(minutes=1)
    # Regenerating needs the password and a current code.
    resp = await admin.post(
        "/api/account/mfa/recovery-codes", json={"password": "wrong password!", "code": "000000"}
    )
    assert resp.status == 401
    resp = await admin.post(
        "/api/account/mfa/recovery-codes",
        json={"password": PASSWORD, "code": code(TOTP_SECRET, clock)},
    )
    assert resp.status == 200, await resp.text()
    old_codes = (await resp.json())["recovery_codes"]
    clock.moment += timedelta(minutes=1)
    resp = await admin.post(
        "/api/account/mfa/recovery-codes",
        json={"password": PASSWORD, "code": code(TOTP_SECRET, clock)},
    )
    codes = (await resp.json())["recovery_codes"]
    async with services.read() as s:
        hashes = list(await s.scalars(select(MfaRecoveryCode.code_hash)))
    assert len(hashes) == 10
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(c in h for c in codes for h in hashes)

    # The phone is lost: the old sheet no longer works, the new one does, once per code.
    pending = await Pending.after_password(client, email)
    assert (await pending.post("/api/auth/mfa", {"code": old_codes[0]})).status == 401
    # Case, spaces and hyphens do not matter when typing it.
    typed = codes[3].replace("-", " ").lower()
    signed = await pending.finish("/api/auth/mfa", {"code": typed})
    assert signed.last_body["mfa_method"] == "recovery_code"  # type: ignore[attr-defined]
    assert signed.last_body["recovery_codes_left"] == 9  # type: ignore[attr-defined]
    again = await Pending.after_password(client, email)
    assert (await again.post("/api/auth/mfa", {"code": codes[3]})).status == 401
    assert ("mfa.recovery_code_used", "success", f"account:{world.accounts['admin_a']}") in (
        await audit_actions(services, "mfa.recovery_code_used")
    )


async def test_wrong_codes_lock_the_account_even_across_new_password_steps(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    email = world.emails["admin_a"]
    pending = await Pending.after_password(client, email)
    for _ in range(3):
        assert (await pending.post("/api/auth/mfa", {"code": "000000"})).status == 401
    # A right password again does not start the count over (no free guesses at the code).
    pending = await Pending.after_password(client, email)
    assert (await pending.post("/api/auth/mfa", {"code": "000000"})).status == 401
    resp = await pending.post("/api/auth/mfa", {"code": "000000"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (423, "locked")
    # Locked: the pending login is gone, and the password alone gets nowhere.
    assert (await pending.post("/api/auth/mfa", {"code": code(TOTP_SECRET, clock)})).status == 401
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status == 423
    actions = [a for a, _, _ in await audit_actions(services, "auth.lockout")]
    assert actions == ["auth.lockout"]
    # After the lockout period the right code works.
    clock.moment += timedelta(minutes=16)
    pending = await Pending.after_password(client, email)
    await pending.finish("/api/auth/mfa", {"code": code(TOTP_SECRET, clock)})


async def test_a_pending_login_reaches_no_other_endpoint(
    client: Client, world: World, clock: ManualClock
) -> None:
    pending = await Pending.after_password(client, world.emails["agency_admin"])
    reached = []
    for router in ROUTERS:
        for endpoint in router.endpoints:
            if endpoint.public or "mfa_pending" in endpoint.roles:
                continue
            path = endpoint.path
            for name in ("facility_id", "account_id", "visit_id", "person_id", "unit_id"):
                path = path.replace("{" + name + "}", "1")
            path = path.replace("{", "").replace("}", "")
            resp = await client.request(endpoint.method, path, json={}, headers=pending.headers())
            if resp.status != 401:
                reached.append(f"{endpoint.method} {endpoint.path}: {resp.status}")
    assert reached == []
    # Nor is the pending cookie a session cookie by another name.
    resp = await client.get("/api/auth/session", headers={"Cookie": f"vv_session={pending.cookie}"})
    assert resp.status == 401


async def test_the_facility_decides_for_officers_and_admins_always_give_a_factor(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    officer_email = world.emails["officer_a"]
    # Facility A does not require MFA for officers: the password is enough.
    officer = await ApiUser.sign_in(client, officer_email)
    status = await (await officer.get("/api/account/mfa")).json()
    assert (status["enrolled"], status["required"]) == (False, False)

    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await admin.patch(
        f"/api/facilities/{world.facility_a}", json={"officer_mfa_required": True}
    )
    assert (await resp.json())["officer_mfa_required"] is True
    assert ("facility.update", "success", f"facility:{world.facility_a}") in await audit_actions(
        services, "facility.update"
    )
    # Now the officer must enrol before anything else; facility B's officer still need not.
    pending = await Pending.after_password(client, officer_email)
    assert pending.stage == "enrol"
    await ApiUser.sign_in(client, world.emails["officer_b"])
    await enrol(client, pending, clock)

    # Switched off again: an enrolled officer still gives a code (the factor is not dropped).
    await admin.patch(f"/api/facilities/{world.facility_a}", json={"officer_mfa_required": False})
    assert (await Pending.after_password(client, officer_email)).stage == "verify"

    # A new administrator needs a factor whatever the facility says about officers.
    await new_admin(client, world)
    assert (await Pending.after_password(client, "new.admin@example.org")).stage == "enrol"


async def test_a_server_may_relax_the_admin_rule(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services
) -> None:
    relaxed = make_settings(settings.data_dir, settings.database_url, admin_mfa_required=False)
    relaxed_services = build_services(relaxed, passwords=fast_passwords())
    world = await build_world(relaxed_services)
    client = await aiohttp_client(create_app(relaxed, services=relaxed_services, workers=[]))
    async with relaxed_services.write() as s:
        admin = (
            await s.scalars(select(Account).where(Account.email == world.emails["admin_b"]))
        ).one()
        admin.mfa_secret = admin.mfa_enrolled_at = None
    resp = await client.post(
        "/api/auth/login", json={"email": world.emails["admin_b"], "password": PASSWORD}
    )
    assert resp.status == 200
    # Enrolled administrators still give their code.
    resp = await client.post(
        "/api/auth/login", json={"email": world.emails["admin_a"], "password": PASSWORD}
    )
    assert resp.status == 202
    await relaxed_services.db.close()


async def test_an_officer_enrols_voluntarily_and_the_secret_never_comes_back(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    wrong = await officer.post("/api/account/mfa/enrolment", json={"password": "not my password"})
    assert wrong.status == 401
    resp = await officer.post("/api/account/mfa/enrolment", json={"password": PASSWORD})
    secret = (await resp.json())["secret"]
    resp = await officer.post(
        "/api/account/mfa/enrolment/confirm", json={"code": code(secret, clock)}
    )
    assert len((await resp.json())["recovery_codes"]) == 10
    again = await officer.post("/api/account/mfa/enrolment", json={"password": PASSWORD})
    assert (again.status, (await again.json())["error"]["code"]) == (409, "mfa_already_enrolled")
    status = await (await officer.get("/api/account/mfa")).json()
    assert status["enrolled"] is True
    assert secret not in str(status)
    async with services.read() as s:
        stored = await s.scalar(
            select(Account.mfa_secret).where(Account.id == world.accounts["officer_a"])
        )
    assert stored is not None
    assert secret not in stored
    assert stored.startswith("v1.")
    # From now on this officer gives a code too, though the facility does not require it.
    assert (await Pending.after_password(client, world.emails["officer_a"])).stage == "verify"


async def test_an_admin_resets_a_colleagues_lost_factor(
    client: Client, world: World, services: Services, clock: ManualClock
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    await admin.patch(f"/api/facilities/{world.facility_a}", json={"officer_mfa_required": True})
    officer_id = world.accounts["officer_a"]
    pending = await Pending.after_password(client, world.emails["officer_a"])
    _, officer = await enrol(client, pending, clock)

    # The officer lost the phone and locked the account guessing codes.
    clock.moment += timedelta(minutes=1)
    pending = await Pending.after_password(client, world.emails["officer_a"])
    for _ in range(5):
        await pending.post("/api/auth/mfa", {"code": "999999"})
    login = {"email": world.emails["officer_a"], "password": PASSWORD}
    assert (await client.post("/api/auth/login", json=login)).status == 423

    # Only administrators in scope reset, and nobody resets their own.
    other_admin = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await other_admin.post(f"/api/staff/{officer_id}/mfa/reset")).status == 404
    colleague = await ApiUser.sign_in(client, world.emails["officer_b"])
    assert (await colleague.post(f"/api/staff/{officer_id}/mfa/reset")).status == 403
    own = await admin.post(f"/api/staff/{world.accounts['admin_a']}/mfa/reset")
    assert (own.status, (await own.json())["error"]["code"]) == (409, "self_mfa_reset")

    resp = await admin.post(f"/api/staff/{officer_id}/mfa/reset")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["mfa_enrolled"] is False
    # The officer's sessions end; the lockout is lifted and they enrol again.
    assert (await officer.get("/api/auth/session")).status == 401
    again = await Pending.after_password(client, world.emails["officer_a"])
    assert again.stage == "enrol"
    async with services.read() as s:
        left = await s.scalar(
            select(MfaRecoveryCode.id).where(MfaRecoveryCode.account_id == officer_id)
        )
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "mfa.reset"))).one()
    assert left is None
    assert entry.actor == f"facility_admin:{world.accounts['admin_a']}"
    assert entry.target == f"account:{officer_id}"
    assert entry.details == {"had_factor": True}


async def test_the_openapi_document_describes_the_second_step(client: Client) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    login = spec["paths"]["/api/auth/login"]["post"]
    assert set(login["responses"]) >= {"200", "202"}
    assert "vv_mfa" in login["description"]
    verify = spec["paths"]["/api/auth/mfa"]["post"]
    assert verify["security"] == [{"mfa_pending": []}]
    assert "recovery code" in verify["description"]
    assert "/api/staff/{account_id}/mfa/reset" in spec["paths"]


async def test_the_operator_resets_the_last_admin_from_the_command_line(
    client: Client,
    world: World,
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The only agency administrator lost their phone: nobody in the app could reset it."""
    monkeypatch.setenv("VV_SECRET_KEY", settings.secret_key or "")
    store = ["--data-dir", str(settings.data_dir), "--database-url", str(settings.database_url)]
    email = world.emails["agency_admin"]
    assert await asyncio.to_thread(main, ["staff", "reset-mfa", email, *store]) == 0
    assert await asyncio.to_thread(main, ["staff", "reset-mfa", "nobody@x.org", *store]) == 1
    assert (await Pending.after_password(client, email)).stage == "enrol"
    async with services.read() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "mfa.reset"))).one()
    assert (entry.actor, entry.target) == (
        "operator:cli",
        f"account:{world.accounts['agency_admin']}",
    )


def test_a_wider_window_forgives_clock_drift_by_whole_steps_only() -> None:
    """``VV_MFA_TOTP_WINDOW=1``: a phone one step ahead or behind still signs in, two do not."""
    moment = datetime(2027, 1, 4, 12, 0, 10, tzinfo=UTC)
    step = totp.time_step(moment)
    for offset in (-1, 0, 1):
        drifted = pyotp.TOTP(TOTP_SECRET).at(moment + timedelta(seconds=30 * offset))
        assert totp.matching_step(TOTP_SECRET, drifted, moment, window=1) == step + offset
        assert (totp.matching_step(TOTP_SECRET, drifted, moment, window=0) is not None) == (
            offset == 0
        )
    far = pyotp.TOTP(TOTP_SECRET).at(moment + timedelta(seconds=60))
    assert totp.matching_step(TOTP_SECRET, far, moment, window=1) is None
    assert totp.matching_step(TOTP_SECRET, "12345a", moment, window=1) is None
