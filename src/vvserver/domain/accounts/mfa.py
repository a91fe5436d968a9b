"""Staff MFA policy and pending logins: who needs a second factor, and the half-signed-in state.

After a right password, a staff account that must use MFA gets a *pending login* instead of a
session: a random token (only its SHA-256 is stored) with its own CSRF token, valid for
``PENDING_TTL`` and used once. It is carried in its own cookie (``vv_mfa``, path
``/api/auth/mfa``) and resolves to a principal of role ``mfa_pending`` that only the
``/api/auth/mfa`` endpoints accept, so it can do nothing else. Stage ``verify`` waits for a
TOTP or recovery code; stage ``enrol`` (MFA required but not set up yet) for enrolment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Facility, MfaPendingLogin, Session
from vvserver.domain.accounts.principal import ADMIN_ROLES, STAFF_ROLES, Principal
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.services import Services
from vvserver.settings import Settings

MFA_COOKIE = "vv_mfa"
MFA_COOKIE_PATH = "/api/auth/mfa"
PENDING_TTL = timedelta(minutes=10)
Stage = Literal["verify", "enrol"]


async def required_by_policy(session: AsyncSession, account: Account, settings: Settings) -> bool:
    """Whether this account must use a second factor: administrators unless the server says
    otherwise, officers when their facility says so (the default)."""
    if account.role not in STAFF_ROLES:
        return False
    if account.role in ADMIN_ROLES:
        return settings.admin_mfa_required
    if account.facility_id is None:
        return True
    flag = await session.scalar(
        select(Facility.officer_mfa_required).where(Facility.id == account.facility_id)
    )
    return flag is not False


async def login_stage(session: AsyncSession, account: Account, settings: Settings) -> Stage | None:
    """What a right password leads to: a second factor (enrolled staff always give one, even
    where the policy would not ask), enrolment first, or a session at once (None)."""
    if account.role not in STAFF_ROLES:
        return None
    if account.mfa_enrolled_at is not None:
        return "verify"
    if await required_by_policy(session, account, settings):
        return "enrol"
    return None


@dataclass(frozen=True, slots=True)
class PendingLogin:
    account: Account
    cookie: str
    csrf_token: str
    stage: Stage
    expires_at: datetime


async def start_pending_login(
    session: AsyncSession, account: Account, stage: Stage, now: datetime
) -> PendingLogin:
    """A new pending login for ``account``; expired ones (anyone's) are dropped on the way."""
    await session.execute(delete(MfaPendingLogin).where(MfaPendingLogin.expires_at <= now))
    cookie, csrf = new_token(), new_token(24)
    expires_at = now + PENDING_TTL
    session.add(
        MfaPendingLogin(
            token_hash=token_hash(cookie),
            account_id=account.id,
            stage=stage,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return PendingLogin(account, cookie, csrf, stage, expires_at)


async def pending_principal(services: Services, cookie: str) -> Principal | None:
    """Resolve a ``vv_mfa`` cookie: the pending login's account as role ``mfa_pending``."""
    key = token_hash(cookie)
    async with services.read() as session:
        row = (
            await session.execute(
                select(MfaPendingLogin.expires_at, MfaPendingLogin.csrf_token, Account)
                .join(Account, Account.id == MfaPendingLogin.account_id)
                .where(MfaPendingLogin.token_hash == key)
            )
        ).first()
    if row is None:
        return None
    expires_at, csrf_token, account = row
    if expires_at <= services.clock.now() or not account.active:
        return None
    return Principal(
        role="mfa_pending",
        account_id=account.id,
        agency_id=account.agency_id,
        facility_id=account.facility_id,
        email=account.email,
        session_hash=key,
        csrf_token=csrf_token,
    )


async def pending_stage(services: Services, key: str) -> tuple[Stage, datetime] | None:
    async with services.read() as session:
        row = await session.get(MfaPendingLogin, key)
    if row is None or row.expires_at <= services.clock.now():
        return None
    stage: Stage = "enrol" if row.stage == "enrol" else "verify"
    return stage, row.expires_at


def open_session(session: AsyncSession, account_id: int, now: datetime) -> tuple[str, str]:
    """A new signed-in session; returns the cookie value and its CSRF token."""
    cookie, csrf = new_token(), new_token(24)
    session.add(
        Session(
            token_hash=token_hash(cookie),
            account_id=account_id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    return cookie, csrf


async def drop_pending_logins(session: AsyncSession, account_id: int) -> None:
    await session.execute(delete(MfaPendingLogin).where(MfaPendingLogin.account_id == account_id))
