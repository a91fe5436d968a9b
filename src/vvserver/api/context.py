"""Per-request context: who is calling (session cookie or kiosk device token) and the services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vvserver.app_keys import REQUEST_ID, SERVICES
from vvserver.domain.accounts.credentials import (
    kiosk_principal,
    session_cookie_name,
    session_principal,
)
from vvserver.domain.accounts.mfa import MFA_COOKIE, pending_principal
from vvserver.domain.accounts.principal import MFA_PENDING, Principal
from vvserver.domain.accounts.secrets import constant_time_equal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Forbidden, NotFound, Unauthenticated
from vvserver.domain.ids import parse_id
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"


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
        value = parse_id(self.request.match_info.get(name, ""))
        if value is None:
            raise NotFound(f"no such {name.removesuffix('_id')}")
        return value

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


async def resolve_context(
    request: web.Request, roles: frozenset[str], unsafe: bool
) -> RequestContext:
    services = request.app[SERVICES]
    principal: Principal | None = None
    from_cookie = False
    auth = request.headers.get("Authorization", "")
    pending = request.cookies.get(MFA_COOKIE) if MFA_PENDING in roles else None
    if pending and len(pending) <= 128 and (found := await pending_principal(services, pending)):
        # Only the second-step endpoints resolve a pending login; it opens nothing else.
        principal, from_cookie = found, True
    elif auth.startswith("Bearer "):
        principal = await kiosk_principal(services, auth.removeprefix("Bearer ").strip())
        if principal is None:
            raise Unauthenticated("invalid device token")
    elif (cookie := request.cookies.get(session_cookie_name(services.settings))) and len(
        cookie
    ) <= 128:
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
