"""Builds a small agency directly in the store, for tests that start from an existing facility."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pyotp
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.store_helpers import ManualClock
from vvserver.app_keys import SERVICES
from vvserver.db.models import (
    Account,
    Agency,
    Approval,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
)
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.accounts.totp import seal_secret
from vvserver.domain.facilities.rules import HourWindow, VisitingRules
from vvserver.domain.services import Services

PASSWORD = "correct horse battery"
# The authenticator app of every World administrator (they are enrolled in MFA, as they must
# be); the World's officers work at facilities that do not require MFA for officers.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ADMIN_ROLES = ("agency_admin", "facility_admin")

# All day, every day, no lead time: tests can book a slot that starts within the hour.
OPEN_RULES = VisitingRules(
    windows=tuple(HourWindow(d, time(0, 0), time(0, 0)) for d in range(7)),
    slot_minutes=30,
    lead_min_minutes=0,
    cancel_lead_minutes=0,
    max_visits_per_person_week=5,
    max_visits_per_visitor_week=5,
)


@dataclass
class World:
    agency_id: int
    other_agency_id: int
    facility_a: int
    facility_b: int
    facility_c: int  # in the other agency
    unit_a1: int
    unit_a2: int
    unit_b1: int
    kiosks: dict[str, int] = field(default_factory=dict)
    kiosk_tokens: dict[str, str] = field(default_factory=dict)
    persons: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)


async def build_world(services: Services, rules: VisitingRules = OPEN_RULES) -> World:
    now = services.clock.now()
    password_hash = await asyncio.to_thread(services.passwords.hash, PASSWORD)
    async with services.write() as s:
        agency = Agency(name="Demo County", created_at=now)
        other = Agency(name="Other County", created_at=now)
        s.add_all([agency, other])
        await s.flush()
        fa = Facility(
            agency_id=agency.id,
            name="Demo County Jail",
            timezone="America/New_York",
            rules=rules.to_json(),
            created_at=now,
            officer_mfa_required=False,
        )
        fb = Facility(
            agency_id=agency.id,
            name="Demo County Annex",
            timezone="America/Chicago",
            rules=rules.to_json(),
            created_at=now,
            officer_mfa_required=False,
        )
        fc = Facility(
            agency_id=other.id,
            name="Other County Jail",
            timezone="America/Denver",
            rules=rules.to_json(),
            created_at=now,
            officer_mfa_required=False,
        )
        s.add_all([fa, fb, fc])
        await s.flush()
        a1 = HousingUnit(facility_id=fa.id, name="A1")
        a2 = HousingUnit(facility_id=fa.id, name="A2")
        b1 = HousingUnit(facility_id=fb.id, name="B1")
        c1 = HousingUnit(facility_id=fc.id, name="C1")
        s.add_all([a1, a2, b1, c1])
        await s.flush()
        world = World(agency.id, other.id, fa.id, fb.id, fc.id, a1.id, a2.id, b1.id)
        for name, unit in (("a1-1", a1), ("a1-2", a1), ("a2-1", a2), ("b1-1", b1), ("c1-1", c1)):
            kiosk = Kiosk(
                facility_id=unit.facility_id,
                unit_id=unit.id,
                name=name,
                credential_hash="",
                enabled=True,
                created_at=now,
            )
            s.add(kiosk)
            await s.flush()
            token = f"k{kiosk.id}.{new_token()}"
            kiosk.credential_hash = token_hash(token)
            world.kiosks[name] = kiosk.id
            world.kiosk_tokens[name] = token
        for key, unit, number in (
            ("pa1", a1, "A-1001"),
            ("pa2", a2, "A-1002"),
            ("pb1", b1, "B-2001"),
            ("pc1", c1, "C-3001"),
        ):
            fac = {a1.id: fa, a2.id: fa, b1.id: fb, c1.id: fc}[unit.id]
            person = Person(
                agency_id=fac.agency_id,
                facility_id=fac.id,
                unit_id=unit.id,
                booking_number=number,
                first_name=key.upper(),
                last_name="Doe",
                status="active",
                created_at=now,
            )
            s.add(person)
            await s.flush()
            world.persons[key] = person.id
        staff: list[tuple[str, str, int | None, int | None]] = [
            ("agency_admin", "agency_admin", agency.id, None),
            ("admin_a", "facility_admin", agency.id, fa.id),
            ("officer_a", "officer", agency.id, fa.id),
            ("admin_b", "facility_admin", agency.id, fb.id),
            ("officer_b", "officer", agency.id, fb.id),
            ("admin_c", "facility_admin", other.id, fc.id),
        ]
        for key, role, agency_id, facility_id in staff:
            account = Account(
                email=f"{key}@example.org",
                password_hash=password_hash,
                role=role,
                agency_id=agency_id,
                facility_id=facility_id,
                name=key.replace("_", " ").title(),
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                id_status="none",
            )
            s.add(account)
            await s.flush()
            if role in ADMIN_ROLES:
                account.mfa_secret = seal_secret(services.secret, account.id, TOTP_SECRET)
                account.mfa_enrolled_at = now
            world.accounts[key] = account.id
            world.emails[key] = account.email
        for key, verified in (("visitor", True), ("visitor2", True), ("newcomer", False)):
            account = Account(
                email=f"{key}@example.net",
                password_hash=password_hash,
                role="visitor",
                name=key.title(),
                active=True,
                email_verified_at=now if verified else None,
                failed_logins=0,
                created_at=now,
                date_of_birth=date(1980, 5, 17),
                phone="+1 555 0100",
                id_status="verified" if verified else "none",
            )
            s.add(account)
            await s.flush()
            world.accounts[key] = account.id
            world.emails[key] = account.email
        for visitor, person_key in (("visitor", "pa1"), ("visitor2", "pa1"), ("visitor", "pb1")):
            p = await s.get(Person, world.persons[person_key])
            assert p is not None
            s.add(
                Approval(
                    person_id=p.id,
                    visitor_id=world.accounts[visitor],
                    facility_id=p.facility_id,
                    status="approved",
                    relationship="sibling",
                    professional="none",
                    created_at=now,
                )
            )
    return world


async def authenticator_code(
    services: Services, email: str, secret: str = TOTP_SECRET, *, at: datetime | None = None
) -> str:
    """The code a staff member's authenticator app shows at the server's time ``at`` (now).

    The server takes each 30-second code once. When the current one was used already (two
    sign-ins in one step), the user waits for the next code: the next step's code at once where
    the server accepts a step ahead (``mfa_totp_window``), else after the wait (a frozen test
    clock is moved on, a real one is slept through).
    """
    async with services.read() as s:
        last = await s.scalar(select(Account.mfa_last_step).where(Account.email == email))
    moment = at or services.clock.now()
    step = int(moment.timestamp()) // 30
    if last is not None and last >= step:
        wait_s = (last + 1) * 30 - moment.timestamp()
        if last + 1 - step > services.settings.mfa_totp_window:
            if isinstance(services.clock, ManualClock):
                services.clock.moment += timedelta(seconds=wait_s)
            else:
                await asyncio.sleep(wait_s + 0.05)
        step = last + 1
    elif not isinstance(services.clock, ManualClock) and (step + 1) * 30 - moment.timestamp() < 5:
        # The code is about to roll over: like a person, wait for the fresh one rather than
        # send one the server may see a step late (a busy test machine is slow to answer).
        await asyncio.sleep((step + 1) * 30 - moment.timestamp() + 0.05)
        step += 1
    return pyotp.TOTP(secret).at(step * 30)


async def complete_sign_in(
    client: TestClient[web.Request, web.Application], email: str, password: str = PASSWORD
) -> ClientResponse:
    """POST /api/auth/login and, when a second factor is asked for, the authenticator's code;
    returns the response that carries the session (200)."""
    resp = await client.post("/api/auth/login", json={"email": email, "password": password})
    if resp.status == 202:
        pending = await resp.json()
        assert pending["stage"] == "verify", pending
        code = await authenticator_code(client.app[SERVICES], email)
        resp = await client.post(
            "/api/auth/mfa", json={"code": code}, headers={"X-CSRF-Token": pending["csrf_token"]}
        )
    assert resp.status == 200, await resp.text()
    return resp


class ApiUser:
    """A signed-in user driving the API the way the web pages do (cookie + CSRF header)."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.csrf = ""
        self.cookies: dict[str, str] = {}

    @classmethod
    async def sign_in(
        cls,
        client: TestClient[web.Request, web.Application],
        email: str,
        password: str = PASSWORD,
    ) -> ApiUser:
        user = cls(client)
        resp = await complete_sign_in(client, email, password)
        user.csrf = (await resp.json())["csrf_token"]
        user.cookies = {"vv_session": resp.cookies["vv_session"].value}
        # Each ApiUser carries its own cookie; the shared client jar must not mix users up.
        client.session.cookie_jar.clear()
        return user

    def _headers(self) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {"X-CSRF-Token": self.csrf, "Cookie": cookie}

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.request("DELETE", path, **kwargs)


BOOKING_NUMBERS = {"pa1": "A-1001", "pa2": "A-1002", "pb1": "B-2001", "pc1": "C-3001"}


async def directory_handle(visitor: ApiUser, world: World, person: str) -> str:
    """Find a person of the world in the directory, as a visitor does; the handle to ask with."""
    facility = {"pa": world.facility_a, "pb": world.facility_b, "pc": world.facility_c}[person[:2]]
    resp = await visitor.get(
        f"/api/facilities/{facility}/directory",
        params={"last_name": "Doe", "booking_number": BOOKING_NUMBERS[person]},
    )
    assert resp.status == 200, await resp.text()
    [entry] = await resp.json()
    handle: str = entry["handle"]
    return handle


async def add_visit(
    services: Services,
    world: World,
    *,
    person: str = "pa1",
    visitor: str = "visitor",
    kiosk: str = "a1-1",
    starts_in: timedelta = timedelta(hours=2),
    minutes: float = 30,
    started: timedelta | None = None,
    ends_in: float | None = None,
    state: str | None = None,
    privileged: bool = False,
) -> int:
    """A visit written straight into the store (booking has its own tests), in one of two shapes.

    Booked: it starts ``starts_in`` from now (on the minute) and lasts ``minutes``; ``scheduled``.
    In progress (``ends_in`` given): it started ``started`` ago (1 minute unless said; negative
    is later) and ends ``ends_in`` seconds from now; ``ready`` unless ``state`` says otherwise.
    """
    now = services.clock.now()
    if ends_in is None:
        start = (now + starts_in).replace(second=0, microsecond=0)
        end = start + timedelta(minutes=minutes)
        default_state = "scheduled"
    else:
        start = now - (timedelta(minutes=1) if started is None else started)
        end = now + timedelta(seconds=ends_in)
        default_state = "ready"
    async with services.write() as s:
        device = await s.get(Kiosk, world.kiosks[kiosk])
        assert device is not None
        visit = Visit(
            facility_id=device.facility_id,
            unit_id=device.unit_id,
            kiosk_id=device.id,
            person_id=world.persons[person],
            visitor_id=world.accounts[visitor],
            start_at=start,
            end_at=end,
            state=state or default_state,
            privileged=privileged,
            minors=[],
            counts_toward_limit=True,
            created_at=now,
            updated_at=now,
        )
        s.add(visit)
        await s.flush()
        return visit.id


async def started_visit(
    services: Services,
    world: World,
    *,
    started_ago: timedelta,
    minutes: int = 30,
    privileged: bool = False,
    kiosk: str = "a1-1",
    person: str = "pa1",
) -> int:
    """A visit that started ``started_ago`` (live, or completed if that is past its end)."""
    visit_id = await add_visit(services, world, kiosk=kiosk, person=person, minutes=minutes)
    async with services.write() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        visit.start_at = services.clock.now() - started_ago
        visit.end_at = visit.start_at + timedelta(minutes=minutes)
        visit.state = "live" if started_ago < timedelta(minutes=minutes) else "completed"
        visit.privileged = privileged
    return visit_id
