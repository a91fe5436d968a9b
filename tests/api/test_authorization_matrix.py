"""Who may call what: every route of the app x every role x own / other facility.

The table below is the written access rule of each route. The test enumerates the app's real
router, so a route added without a row here fails the suite, and so does a stale row.
For each route and each actor it checks: anonymous -> 401 (unless public); a role without access
-> 403; a role with access -> not 401/403/404 on its own objects and 404 on objects of another
facility (another agency for the agency admin, another visitor for a visitor).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.authz_world import PNG, Objects, populate
from tests.conftest import TEST_SECRET_KEY, AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, authenticator_code, build_world, complete_sign_in
from tests.recording_support import record_visit
from tests.schema_examples import example
from vvserver.api.endpoints import path_params
from vvserver.api.openapi import build_openapi
from vvserver.app import ROUTERS, build_services, create_app
from vvserver.app_keys import ENDPOINTS
from vvserver.db.migrate import upgrade
from vvserver.domain.people.directory_handles import issue_handle
from vvserver.settings import Settings

PUBLIC = frozenset({"public"})
VISITOR = frozenset({"visitor"})
KIOSK = frozenset({"kiosk"})
STAFF = frozenset({"officer", "facility_admin", "agency_admin"})
ADMINS = frozenset({"facility_admin", "agency_admin"})
AGENCY = frozenset({"agency_admin"})
ACCOUNTS = frozenset({"visitor"}) | STAFF
MFA_PENDING = frozenset({"mfa_pending"})
VISITOR_STAFF = ACCOUNTS

Body = Callable[[Objects, str], Any]


@dataclass(frozen=True)
class Access:
    roles: frozenset[str]
    # A valid body for the request made in ``place``; default: a minimal one from the schema.
    body: Body | None = None
    # False where the route has no object of a facility to be outside of (e.g. a directory).
    scoped: bool = True
    # What a visitor gets for another visitor's object (staff always get 404 outside scope).
    visitor_other: int = 404
    # The body's "code" is replaced by the caller's current authenticator code.
    fresh_code: bool = False


def _at(objects: Objects, param: str, place: str) -> int:
    by_place = objects.ids[param]
    return by_place.get(place, by_place["A"])


def _handle(objects: Objects, person_id: int) -> str:
    """What the directory hands the signed-in visitor for this person."""
    return issue_handle(
        TEST_SECRET_KEY.encode(),
        person_id=person_id,
        visitor_id=objects.ids["signed_in_visitor"]["mine"],
        now=datetime.now(UTC),
    )


def _future(days: int, hour: int = 15) -> str:
    return f"2031-01-{days:02d}T{hour:02d}:00:00+00:00"


MATRIX: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): Access(PUBLIC),
    ("GET", "/api/openapi.json"): Access(PUBLIC),
    ("GET", "/api/site"): Access(PUBLIC),
    # Loopback (the test client) or the metrics bearer token: tests/api/test_metrics.py.
    ("GET", "/metrics"): Access(PUBLIC),
    ("POST", "/api/auth/signup"): Access(
        PUBLIC,
        body=lambda o, p: {
            "email": "new@example.org",
            "password": "long enough password",
            "name": "New",
            "date_of_birth": "1990-01-01",
            "phone": "+1 555 0123",
        },
    ),
    ("POST", "/api/auth/login"): Access(
        PUBLIC, body=lambda o, p: {"email": "visitor@example.net", "password": PASSWORD}
    ),
    ("POST", "/api/auth/logout"): Access(ACCOUNTS, scoped=False),
    ("POST", "/api/auth/logout-everywhere"): Access(ACCOUNTS, scoped=False),
    ("POST", "/api/auth/unlock"): Access(PUBLIC, body=lambda o, p: {"token": "x" * 20}),
    ("GET", "/api/auth/session"): Access(ACCOUNTS, scoped=False),
    ("PUT", "/api/auth/language"): Access(
        ACCOUNTS, scoped=False, body=lambda o, p: {"language": "es"}
    ),
    ("POST", "/api/auth/verify-email"): Access(PUBLIC, body=lambda o, p: {"token": "x" * 20}),
    ("POST", "/api/auth/resend-verification"): Access(VISITOR, scoped=False),
    ("POST", "/api/auth/password-reset"): Access(PUBLIC),
    ("POST", "/api/auth/password-reset/confirm"): Access(PUBLIC),
    ("POST", "/api/auth/password"): Access(
        ACCOUNTS,
        scoped=False,
        body=lambda o, p: {"current_password": PASSWORD, "new_password": "another long one"},
    ),
    # Multi-factor sign-in: the second step only answers a pending login (the vv_mfa cookie);
    # tests/security/test_staff_mfa.py shows a pending login reaches nothing else.
    ("GET", "/api/auth/mfa"): Access(MFA_PENDING, scoped=False),
    ("POST", "/api/auth/mfa"): Access(MFA_PENDING, scoped=False),
    ("POST", "/api/auth/mfa/enrolment"): Access(MFA_PENDING, scoped=False),
    ("POST", "/api/auth/mfa/enrolment/confirm"): Access(MFA_PENDING, scoped=False),
    ("GET", "/api/account/mfa"): Access(STAFF, scoped=False),
    ("POST", "/api/account/mfa/enrolment"): Access(
        STAFF, scoped=False, body=lambda o, p: {"password": PASSWORD}
    ),
    ("POST", "/api/account/mfa/enrolment/confirm"): Access(STAFF, scoped=False),
    ("POST", "/api/account/mfa/recovery-codes"): Access(
        STAFF,
        scoped=False,
        body=lambda o, p: {"password": PASSWORD, "code": "000000"},
        fresh_code=True,
    ),
    ("POST", "/api/staff/{account_id}/mfa/reset"): Access(ADMINS),
    # Facilities, units, kiosks, rules, blackouts.
    ("GET", "/api/facilities"): Access(VISITOR_STAFF),
    ("POST", "/api/facilities"): Access(AGENCY),
    ("GET", "/api/facilities/{facility_id}"): Access(VISITOR_STAFF),
    ("PATCH", "/api/facilities/{facility_id}"): Access(ADMINS),
    ("PUT", "/api/facilities/{facility_id}/rules"): Access(ADMINS),
    ("GET", "/api/facilities/{facility_id}/units"): Access(STAFF),
    ("POST", "/api/facilities/{facility_id}/units"): Access(ADMINS),
    ("PUT", "/api/units/{unit_id}/rules"): Access(ADMINS),
    ("GET", "/api/facilities/{facility_id}/kiosks"): Access(STAFF),
    ("POST", "/api/facilities/{facility_id}/kiosks"): Access(
        ADMINS, body=lambda o, p: {"unit_id": _at(o, "unit_id", p), "name": "new kiosk"}
    ),
    ("PATCH", "/api/kiosks/{kiosk_id}"): Access(ADMINS),
    ("POST", "/api/kiosks/{kiosk_id}/rotate"): Access(ADMINS),
    ("GET", "/api/facilities/{facility_id}/blackouts"): Access(STAFF),
    ("POST", "/api/facilities/{facility_id}/blackouts"): Access(
        ADMINS,
        body=lambda o, p: {"starts_at": _future(6), "ends_at": _future(6, 17), "reason": "drill"},
    ),
    ("DELETE", "/api/blackouts/{blackout_id}"): Access(ADMINS),
    # People in custody.
    ("GET", "/api/facilities/{facility_id}/persons"): Access(STAFF),
    ("POST", "/api/facilities/{facility_id}/persons"): Access(
        ADMINS,
        body=lambda o, p: {
            "booking_number": "N-1",
            "first_name": "Neo",
            "last_name": "Smith",
            "unit_id": _at(o, "unit_id", p),
        },
    ),
    ("GET", "/api/facilities/{facility_id}/directory"): Access(VISITOR, scoped=False),
    ("GET", "/api/facilities/{facility_id}/directory/format"): Access(VISITOR, scoped=False),
    ("GET", "/api/persons/{person_id}"): Access(STAFF),
    ("PATCH", "/api/persons/{person_id}"): Access(ADMINS),
    # A visitor found the person in the directory already; not being approved is said plainly.
    ("GET", "/api/persons/{person_id}/availability"): Access(VISITOR_STAFF, visitor_other=403),
    ("GET", "/api/persons/{person_id}/visit-now"): Access(VISITOR, visitor_other=403),
    ("POST", "/api/persons/{person_id}/visit-now"): Access(VISITOR, visitor_other=403),
    ("POST", "/api/persons/{person_id}/release"): Access(ADMINS),
    ("POST", "/api/persons/{person_id}/transfer"): Access(ADMINS),
    ("POST", "/api/persons/{person_id}/suspend"): Access(ADMINS),
    ("POST", "/api/persons/{person_id}/unsuspend"): Access(ADMINS),
    ("PUT", "/api/persons/{person_id}/pin"): Access(ADMINS, body=lambda o, p: {"pin": "4821"}),
    # Staff accounts.
    ("GET", "/api/staff"): Access(ADMINS),
    ("POST", "/api/staff"): Access(
        ADMINS,
        scoped=False,
        body=lambda o, p: {
            "email": "new.officer@example.org",
            "name": "New Officer",
            "role": "officer",
            "facility_id": _at(o, "facility_id", p),
            "password": "long enough password",
        },
    ),
    ("POST", "/api/staff/{account_id}/deactivate"): Access(ADMINS),
    # Visitors: profile, identity checks, bans, approvals.
    ("GET", "/api/me"): Access(VISITOR),
    ("PATCH", "/api/me"): Access(VISITOR),
    ("PUT", "/api/me/id-photo"): Access(VISITOR),
    ("GET", "/api/visitors/{visitor_id}"): Access(STAFF),
    ("GET", "/api/visitors/{visitor_id}/id-photo"): Access(STAFF),
    ("POST", "/api/visitors/{visitor_id}/id-check"): Access(
        ADMINS, body=lambda o, p: {"decision": "verified"}
    ),
    ("GET", "/api/facilities/{facility_id}/bans"): Access(STAFF),
    ("POST", "/api/facilities/{facility_id}/bans"): Access(
        ADMINS,
        body=lambda o, p: {
            "visitor_id": _at(o, "visitor_id", p),
            "reason": "threats",
            "ends_at": _future(20),
        },
    ),
    ("POST", "/api/bans/{ban_id}/lift"): Access(ADMINS),
    ("GET", "/api/approvals"): Access(VISITOR_STAFF),
    ("POST", "/api/approvals"): Access(
        VISITOR,
        scoped=False,
        body=lambda o, p: {
            "handle": _handle(o, o.ids["person_id"]["theirs"]),
            "relationship": "cousin",
            "professional": "none",
        },
    ),
    ("POST", "/api/approvals/{approval_id}/decision"): Access(
        ADMINS, body=lambda o, p: {"decision": "denied", "reason": "incomplete"}
    ),
    ("POST", "/api/approvals/{approval_id}/revoke"): Access(
        ADMINS, body=lambda o, p: {"reason": "conduct"}
    ),
    # Visits.
    ("GET", "/api/visits"): Access(VISITOR_STAFF),
    ("POST", "/api/visits"): Access(
        VISITOR,
        scoped=False,
        body=lambda o, p: {"person_id": o.ids["person_id"]["mine"], "start": _future(7)},
    ),
    ("GET", "/api/visits/{visit_id}"): Access(VISITOR_STAFF),
    ("GET", "/api/visits/{visit_id}/calendar.ics"): Access(VISITOR_STAFF),
    ("POST", "/api/visits/{visit_id}/join-link"): Access(VISITOR),
    ("POST", "/api/visits/{visit_id}/cancel"): Access(
        VISITOR_STAFF, body=lambda o, p: {"reason": "family emergency"}
    ),
    ("POST", "/api/visits/{visit_id}/reschedule"): Access(
        VISITOR_STAFF, body=lambda o, p: {"start": _future(8), "reason": "unit lockdown"}
    ),
    ("POST", "/api/visits/{visit_id}/rebook"): Access(
        VISITOR, body=lambda o, p: {"start": _future(9)}
    ),
    ("GET", "/api/kiosk/schedule"): Access(KIOSK),
    # Standing weekly visits: the visitor's own; staff see those of their people.
    ("POST", "/api/series"): Access(
        VISITOR,
        scoped=False,
        body=lambda o, p: {"person_id": o.ids["person_id"]["mine"], "weekday": 2, "time": "16:00"},
    ),
    ("GET", "/api/series"): Access(VISITOR_STAFF, scoped=False),
    ("GET", "/api/series/{series_id}"): Access(VISITOR_STAFF),
    ("POST", "/api/series/{series_id}/pause"): Access(VISITOR),
    ("POST", "/api/series/{series_id}/resume"): Access(VISITOR),
    ("POST", "/api/series/{series_id}/cancel"): Access(VISITOR),
    # Live calls.
    ("POST", "/api/visits/{visit_id}/terminate"): Access(
        STAFF, body=lambda o, p: {"reason": "contraband shown on camera"}
    ),
    ("GET", "/api/visits/{visit_id}/quality"): Access(STAFF),
    ("POST", "/api/visits/{visit_id}/monitor"): Access(STAFF, body=lambda o, p: {"sdp": "v=0"}),
    ("DELETE", "/api/visits/{visit_id}/monitor"): Access(STAFF),
    ("GET", "/api/metrics"): Access(ADMINS),
    ("POST", "/api/visits/{visit_id}/flags"): Access(
        STAFF, body=lambda o, p: {"note": "holds a paper up to the camera"}
    ),
    ("GET", "/api/visits/{visit_id}/flags"): Access(STAFF),
    # Recordings and evidence.
    ("GET", "/api/recordings"): Access(STAFF, scoped=False),
    ("GET", "/api/visits/{visit_id}/recording"): Access(STAFF),
    ("GET", "/api/recordings/{recording_id}/files/{name}"): Access(STAFF),
    ("GET", "/api/visits/{visit_id}/evidence.zip"): Access(STAFF),
    # Legal holds: administrators place and lift them; every staff member sees them.
    ("POST", "/api/visits/{visit_id}/hold"): Access(
        ADMINS, body=lambda o, p: {"reason": "subpoena 114"}
    ),
    ("POST", "/api/visits/{visit_id}/hold/lift"): Access(
        ADMINS, body=lambda o, p: {"reason": "case closed"}
    ),
    ("GET", "/api/visits/{visit_id}/holds"): Access(STAFF),
    # Audit log.
    ("GET", "/api/audit"): Access(ADMINS, scoped=False),
    ("POST", "/api/audit/verify"): Access(ADMINS, scoped=False),
    ("GET", "/api/facilities/{facility_id}/reports"): Access(ADMINS),
    # In-call chat (sent over the WebSockets), read back by the visit's sides and staff.
    ("GET", "/api/visits/{visit_id}/messages"): Access(VISITOR_STAFF | KIOSK),
}
# Path parameters that are names rather than ids: the same in every place.
PATH_WORDS = {"name": "kiosk-001.webm"}


@dataclass(frozen=True)
class Actor:
    role: str
    login: str | None  # world.emails key, or "kiosk:<name>" for a device token
    own: str
    other: str


ACTORS = (
    Actor("anonymous", None, "A", "B"),
    Actor("visitor", "visitor", "mine", "theirs"),
    Actor("officer", "officer_a", "A", "B"),
    Actor("facility_admin", "admin_a", "A", "B"),
    Actor("agency_admin", "agency_admin", "A", "C"),
    Actor("kiosk", "kiosk:a1-1", "A", "B"),
)

SPEC = build_openapi([e for r in ROUTERS for e in r.endpoints])
ROUTES = sorted({(e.method, e.path) for r in ROUTERS for e in r.endpoints})


@dataclass
class Template:
    data_dir: Path
    objects: Objects
    emails: dict[str, str]
    kiosk_tokens: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    data_dir = tmp_path_factory.mktemp("authz-template")

    async def build() -> Template:
        url = f"sqlite+aiosqlite:///{data_dir / 'vv.sqlite3'}"
        await upgrade(url)
        services = build_services(make_settings(data_dir, url), passwords=fast_passwords())
        try:
            world = await build_world(services)
            objects = await populate(services, world)
            objects.ids["recording_id"] = {
                place: await record_visit(services, objects.ids["visit_id"][place])
                for place in ("A", "B", "C")
            }
        finally:
            await services.db.close()
        return Template(data_dir, objects, world.emails, world.kiosk_tokens)

    return asyncio.run(build())


def test_every_route_has_an_access_rule() -> None:
    missing = [route for route in ROUTES if route not in MATRIX]
    stale = [route for route in MATRIX if route not in ROUTES]
    assert not missing, f"routes without an access rule in MATRIX: {missing}"
    assert not stale, f"MATRIX rows for routes that do not exist: {stale}"


def _request_body(method: str, path: str, access: Access, objects: Objects, place: str) -> Any:
    operation = SPEC["paths"][path][method.lower()]
    components = SPEC["components"]["schemas"]
    query = {
        param["name"]: example(param["schema"], components)
        for param in operation.get("parameters", [])
        if param["in"] == "query" and param["required"]
    }
    extra: dict[str, Any] = {"params": query} if query else {}
    if access.body is not None:
        return {"json": access.body(objects, place), **extra}
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        return {"json": example(schema, components), **extra}
    if "image/png" in content:
        return {"data": PNG, "headers": {"Content-Type": "image/png"}, **extra}
    return extra


def _fill(path: str, objects: Objects, place: str) -> tuple[str, bool]:
    """The path with ids of ``place``; False when some parameter has no object there."""
    complete = True
    for name in path_params(path):
        if name in PATH_WORDS:
            path = path.replace("{" + name + "}", PATH_WORDS[name])
            continue
        by_place = objects.ids[name]
        if place not in by_place:
            complete = False
        path = path.replace("{" + name + "}", str(by_place.get(place, by_place["A"])))
    return path, complete


async def _call(
    aiohttp_client: AiohttpClient,
    template: Template,
    tmp_path: Path,
    actor: Actor,
    method: str,
    path: str,
    access: Access,
) -> list[tuple[str, int, str]]:
    """Requests by ``actor`` on a fresh copy of the template: other place first, then own."""
    data_dir = tmp_path / f"{actor.role}-{abs(hash((method, path)))}"
    shutil.copytree(template.data_dir, data_dir)
    # A step of TOTP drift lets a signed-in admin give a fresh code at once (no 30 s wait).
    database_url = f"sqlite+aiosqlite:///{data_dir / 'vv.sqlite3'}"
    settings: Settings = make_settings(data_dir, database_url, mfa_totp_window=1)
    services = build_services(settings, passwords=fast_passwords())
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    headers: dict[str, str] = {}
    if actor.login and actor.login.startswith("kiosk:"):
        headers["Authorization"] = f"Bearer {template.kiosk_tokens[actor.login[6:]]}"
    elif actor.login:
        resp = await complete_sign_in(client, template.emails[actor.login])
        headers["X-CSRF-Token"] = (await resp.json())["csrf_token"]
    outcomes = []
    for which, place in (("other", actor.other), ("own", actor.own)):
        url, complete = _fill(path, template.objects, place)
        if which == "other" and (not complete or not access.scoped or not path_params(path)):
            continue
        kwargs = _request_body(method, path, access, template.objects, place)
        if access.fresh_code and actor.login in template.emails:
            email = template.emails[actor.login]
            kwargs["json"]["code"] = await authenticator_code(services, email)
        kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
        resp = await client.request(method, url, **kwargs)
        outcomes.append((which, resp.status, (await resp.read())[:200].decode(errors="replace")))
    await client.close()
    return outcomes


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_access(
    aiohttp_client: AiohttpClient, template: Template, tmp_path: Path, method: str, path: str
) -> None:
    access = MATRIX.get((method, path))
    if access is None:
        pytest.fail(f"no access rule for {method} {path} in MATRIX")
    problems: list[str] = []
    scoped = access.scoped and bool(path_params(path))
    for actor in ACTORS:
        outcomes = await _call(aiohttp_client, template, tmp_path, actor, method, path, access)
        for which, status, text in outcomes:
            if status >= 500:
                problems.append(f"{actor.role} {which}: {status} {text}")
            elif "public" in access.roles:
                if status in (401, 403):
                    problems.append(f"{actor.role}: public route answered {status} {text}")
            elif actor.role == "anonymous":
                if status != 401:
                    problems.append(f"anonymous: expected 401, got {status}")
            elif actor.role not in access.roles:
                allowed = (403, 404) if which == "other" else (403,)
                if status not in allowed:
                    problems.append(f"{actor.role} {which}: expected 403, got {status} {text}")
            elif which == "own":
                if status in (401, 403, 404):
                    problems.append(f"{actor.role} own: refused with {status} {text}")
            elif scoped:
                expected = access.visitor_other if actor.role == "visitor" else 404
                if status != expected:
                    problems.append(f"{actor.role} other: expected {expected}, got {status} {text}")
    assert not problems, f"{method} {path}:\n" + "\n".join(problems)


def test_app_router_matches_the_registry(template: Template) -> None:
    app = create_app(
        make_settings(template.data_dir, f"sqlite+aiosqlite:///{template.data_dir}/vv.sqlite3"),
        workers=[],
    )
    registered = {(e.method, e.path) for e in app[ENDPOINTS]}
    routed = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    # The WebSocket endpoints authenticate inside the socket (close code 1008); their refusal
    # paths (token, role, Origin, size) are tested in tests/signaling.
    websockets = {("GET", "/ws/visitor"), ("GET", "/ws/kiosk"), ("GET", "/ws/officer")}
    # The web pages (vvserver.web_pages) are public static files outside /api.
    pages = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.name in ("web_root", "web_page")
        and route.method != "HEAD"
    }
    assert registered == set(ROUTES)
    assert routed == registered | websockets | pages
    assert isinstance(app, web.Application)
