"""Per-request context: who is calling (session cookie or kiosk device token) and the services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import bindparam, select

from vvserver.app_keys import REQUEST_ID, SERVICES
from vvserver.db.models import Account, Kiosk, Session
from vvserver.db.prepared import Prepared
from vvserver.domain.accounts.principal import STAFF_ROLES, Principal, Role
from vvserver.domain.accounts.secrets import constant_time_equal, token_hash
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Forbidden, NotFound, Unauthenticated
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

SESSION_COOKIE = "vv_session"
CSRF_HEADER = "X-CSRF-Token"
_TOUCH_EVERY = timedelta(seconds=60)
# Every cookie request runs this: only the columns needed, one driver round trip on SQLite.
_SESSION_LOOKUP = Prepared(
    select(
        Session.csrf_token,
        Session.last_seen_at,
        Account.id,
        Account.role,
        Account.agency_id,
        Account.facility_id,
        Account.email,
        Account.active,
    )
    .join(Account, Account.id == Session.account_id)
    .where(Session.token_hash == bindparam("key"))
)


@dataclass
class RequestContext:
    request: web.Request
    services: Services
    principal: Principal | None
    request_id: str

    @property
    def client_ip(self) -> str:
        return self.request.remote or "unknown"

    def require(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("sign in first")
        return self.principal

    def path_int(self, name: str) -> int:
        raw = self.request.match_info.get(name, "")
        # Ids are 32-bit on PostgreSQL; anything larger cannot exist.
        if not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:
            raise NotFound(f"no such {name.removesuffix('_id')}")
        return int(raw)

    def record(
        self,
        action: str,
        outcome: str = "success",
        target: str | None = None,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> AuditRecord:
        if actor is None:
            actor = self.principal.actor if self.principal else f"anonymous@{self.client_ip}"
        return AuditRecord(
            actor=actor,
            action=action,
            outcome=outcome,
            target=target,
            request_id=self.request_id,
            details=details,
        )


async def _kiosk_principal(services: Services, header: str) -> Principal | None:
    token = header.removeprefix("Bearer ").strip()
    kiosk_part, _, _secret = token.partition(".")
    if not kiosk_part.startswith("k") or not kiosk_part[1:].isdigit() or len(kiosk_part) > 19:
        return None
    async with services.read() as session:
        kiosk = await session.get(Kiosk, int(kiosk_part[1:]))
        if kiosk is None or not kiosk.enabled:
            return None
        if not constant_time_equal(kiosk.credential_hash, token_hash(token)):
            return None
        return Principal(role="kiosk", kiosk_id=kiosk.id, facility_id=kiosk.facility_id)


async def session_principal(services: Services, cookie: str) -> Principal | None:
    """Resolve a session cookie; expire idle sessions (staff after ``staff_idle_minutes``)."""
    key = token_hash(cookie)
    now = services.clock.now()
    cached = services.sessions.get(key)
    if cached is not None:
        if now - cached.last_seen_at <= timedelta(minutes=cached.idle_minutes):
            if now - cached.last_seen_at > _TOUCH_EVERY:
                await touch_session(services, key)
                cached.last_seen_at = now
            return cached.principal
        services.sessions.forget(key)
    async with services.read() as session:
        row = await _SESSION_LOOKUP.first(session, key=key)
    if row is None:
        return None
    csrf_token, last_seen, account_id, role_name, agency_id, facility_id, email, active = row
    idle = (
        services.settings.staff_idle_minutes
        if role_name in STAFF_ROLES
        else services.settings.visitor_idle_minutes
    )
    if not active or now - last_seen > timedelta(minutes=idle):
        async with services.write() as session:
            stale = await session.get(Session, key)
            if stale is not None:
                await session.delete(stale)
        return None
    if now - last_seen > _TOUCH_EVERY:
        await touch_session(services, key)
        last_seen = now
    role: Role = role_name
    principal = Principal(
        role=role,
        account_id=account_id,
        agency_id=agency_id,
        facility_id=facility_id,
        email=email,
        session_hash=key,
        csrf_token=csrf_token,
    )
    services.sessions.put(key, principal, last_seen, idle)
    return principal


async def touch_session(services: Services, key: str) -> None:
    """Mark a session active (also called by long-lived channels such as the live view)."""
    async with services.write() as session:
        sess = await session.get(Session, key)
        if sess is not None:
            sess.last_seen_at = services.clock.now()


async def resolve_context(
    request: web.Request, roles: frozenset[str], unsafe: bool
) -> RequestContext:
    services = request.app[SERVICES]
    principal: Principal | None = None
    from_cookie = False
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        principal = await _kiosk_principal(services, auth)
        if principal is None:
            raise Unauthenticated("invalid device token")
    elif (cookie := request.cookies.get(SESSION_COOKIE)) and len(cookie) <= 128:
        principal = await session_principal(services, cookie)
        from_cookie = principal is not None
    ctx = RequestContext(request, services, principal, request[REQUEST_ID])
    if "public" in roles:
        return ctx
    if principal is None:
        raise Unauthenticated("sign in first")
    if principal.role not in roles:
        raise Forbidden(f"not allowed for role {principal.role}")
    if unsafe and from_cookie:
        sent = request.headers.get(CSRF_HEADER, "")
        if not principal.csrf_token or not constant_time_equal(sent, principal.csrf_token):
            raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    return ctx
