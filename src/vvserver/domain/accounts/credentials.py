"""Who is calling, from the credential they present: a session cookie or a kiosk device token.

Both edges (the HTTP API and the signaling sockets) resolve callers through these functions.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select

from vvserver.db.models import Account, Kiosk, Session
from vvserver.db.prepared import Prepared
from vvserver.domain.accounts.principal import STAFF_ROLES, Principal, Role
from vvserver.domain.accounts.secrets import constant_time_equal, token_hash
from vvserver.domain.ids import parse_id
from vvserver.domain.services import Services
from vvserver.settings import Settings

SESSION_COOKIE = "vv_session"
# Behind TLS the cookie carries the ``__Host-`` prefix: browsers then accept it only with
# ``Secure``, ``Path=/`` and no ``Domain``, so no sibling host or plain-http page can set it.
SECURE_SESSION_COOKIE = "__Host-vv_session"
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


def session_cookie_name(settings: Settings) -> str:
    """The session cookie's name: ``__Host-vv_session`` behind TLS, else ``vv_session``."""
    return SECURE_SESSION_COOKIE if settings.behind_tls else SESSION_COOKIE


async def kiosk_principal(services: Services, token: str) -> Principal | None:
    """Resolve a kiosk device token (``k<id>.<secret>``); None unless it is the enabled kiosk's."""
    kiosk_part, _, _secret = token.partition(".")
    kiosk_id = parse_id(kiosk_part[1:]) if kiosk_part.startswith("k") else None
    if kiosk_id is None:
        return None
    async with services.read() as session:
        kiosk = await session.get(Kiosk, kiosk_id)
        if kiosk is None or not kiosk.enabled:
            return None
        if not constant_time_equal(kiosk.credential_hash, token_hash(token)):
            return None
        return Principal(role="kiosk", kiosk_id=kiosk.id, facility_id=kiosk.facility_id)


async def kiosk_token_current(services: Services, kiosk_id: int, credential_hash: str) -> bool:
    """Whether the kiosk is still enabled and ``credential_hash`` is still its token's hash."""
    async with services.read() as session:
        kiosk = await session.get(Kiosk, kiosk_id, populate_existing=True)
        return (
            kiosk is not None
            and kiosk.enabled
            and constant_time_equal(kiosk.credential_hash, credential_hash)
        )


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
    generation = services.sessions.generation
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
    services.sessions.put(key, principal, last_seen, idle, generation)
    return principal


async def touch_session(services: Services, key: str) -> None:
    """Mark a session active (also called by long-lived channels such as the live view)."""
    async with services.write() as session:
        sess = await session.get(Session, key)
        if sess is not None:
            sess.last_seen_at = services.clock.now()
