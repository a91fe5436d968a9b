"""Sign-in with lockout, sign-out (here or everywhere), and the owner's unlock link.

After ``lockout_failures`` wrong passwords in a row an e-mail address is locked for
``lockout_minutes``, whether or not it belongs to an account (addresses without an active
account count in ``LoginFailures``), so the answers never tell whether an account exists.
Anyone who knows an address can therefore lock its account for a while; the owner gets an
e-mail with an unlock link (one valid link at a time, ``UNLOCK_TTL``) that lifts the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, LoginFailures
from vvserver.domain.accounts.email_links import (
    consume_email_token,
    issue_email_token,
    normalise_email,
    tokens_issued_since,
)
from vvserver.domain.accounts.mfa import (
    PendingLogin,
    login_stage,
    open_session,
    start_pending_login,
)
from vvserver.domain.accounts.revocation import end_session, end_sessions
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Locked, Unauthenticated
from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services

UNLOCK_TTL = timedelta(hours=24)
# Failures of addresses without an account are forgotten after this long without a new one.
FORGET_FAILURES_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: Account
    cookie: str
    csrf_token: str


def _locked(locked_until: datetime, now: datetime) -> Locked:
    minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
    return Locked(
        f"account locked after repeated failures; try again in {minutes} min",
        details={"locked_until": locked_until.isoformat()},
    )


async def sign_in(
    services: Services, email: str, password: str, *, client: str, request_id: str | None
) -> SignedIn | PendingLogin:
    """Check the password; lock the address for ``lockout_minutes`` after too many failures.

    Staff who must give a second factor get a pending login instead of a session (see
    ``mfa.py``). Every attempt, successful or not, is audited (CJIS 5.4.1.1).
    """
    email = normalise_email(email)
    now = services.clock.now()
    async with services.read() as session:
        account = await session.scalar(select(Account).where(Account.email == email))
    stored = account.password_hash if account is not None else None
    ok = await asyncio.to_thread(services.passwords.verify, stored, password)

    def record(outcome: str, action: str = "auth.login", **details: object) -> AuditRecord:
        return AuditRecord(
            actor=f"{account.role}:{account.id}" if account else f"anonymous@{client}",
            action=action,
            outcome=outcome,
            target=f"account:{account.id}" if account else None,
            request_id=request_id,
            details={"email": email, "client": client, **details},
        )

    if account is None or not account.active:
        raise await _unknown_address_failed(services, email, now, record)
    raise_after: Locked | Unauthenticated
    async with services.write() as session:
        current = await session.get(Account, account.id, with_for_update=True)
        assert current is not None
        if current.locked_until is not None and current.locked_until > now:
            await services.audit.append(session, record("failure", reason="locked"), now)
            raise_after = _locked(current.locked_until, now)
        elif not ok:
            current.failed_logins += 1
            await services.audit.append(
                session,
                record("failure", reason="bad password", failures=current.failed_logins),
                now,
            )
            if current.failed_logins >= services.settings.lockout_failures:
                current.locked_until = now + timedelta(minutes=services.settings.lockout_minutes)
                current.failed_logins = 0
                await services.audit.append(session, record("success", action="auth.lockout"), now)
                await _offer_unlock(services, session, current, now)
            raise_after = Unauthenticated("wrong e-mail or password", code="bad_credentials")
        elif (stage := await login_stage(session, current, services.settings)) is not None:
            # The password was right but a second factor (or enrolment) is still due. The
            # failure count is kept: it resets only once the whole sign-in succeeds, so a
            # known password does not buy unlimited guesses at the code.
            await services.audit.append(
                session, record("success", action="auth.password", mfa=stage), now
            )
            return await start_pending_login(session, current, stage, now)
        else:
            current.failed_logins = 0
            current.locked_until = None
            cookie, csrf = open_session(session, current.id, now)
            await services.audit.append(session, record("success"), now)
            return SignedIn(current, cookie, csrf)
    raise raise_after


async def _unknown_address_failed(
    services: Services,
    email: str,
    now: datetime,
    record: Callable[..., AuditRecord],
) -> Locked | Unauthenticated:
    """Count a failure for an address without an active account, as for an account."""
    try:
        return await _count_unknown_failure(services, token_hash(email), now, record)
    except IntegrityError:
        # The first failure of this address, twice at once (PostgreSQL): the row exists now.
        return await _count_unknown_failure(services, token_hash(email), now, record)


async def _count_unknown_failure(
    services: Services, key: str, now: datetime, record: Callable[..., AuditRecord]
) -> Locked | Unauthenticated:
    async with services.write() as session:
        await session.execute(
            delete(LoginFailures).where(
                LoginFailures.last_failed_at < now - FORGET_FAILURES_AFTER,
                LoginFailures.email_hash != key,
            )
        )
        row = await session.get(LoginFailures, key, with_for_update=True)
        if row is None:
            row = LoginFailures(email_hash=key, failures=0, locked_until=None, last_failed_at=now)
            session.add(row)
            await session.flush()
        if row.locked_until is not None and row.locked_until > now:
            await services.audit.append(session, record("failure", reason="locked"), now)
            return _locked(row.locked_until, now)
        row.failures += 1
        row.last_failed_at = now
        await services.audit.append(
            session, record("failure", reason="unknown or inactive account"), now
        )
        if row.failures >= services.settings.lockout_failures:
            row.locked_until = now + timedelta(minutes=services.settings.lockout_minutes)
            row.failures = 0
            await services.audit.append(session, record("success", action="auth.lockout"), now)
    return Unauthenticated("wrong e-mail or password", code="bad_credentials")


async def _offer_unlock(
    services: Services, session: AsyncSession, account: Account, now: datetime
) -> None:
    """E-mail the owner of a locked account an unlock link, unless one sent lately still works."""
    recent = await tokens_issued_since(
        session, account.id, "unlock", now - timedelta(hours=1), UNLOCK_TTL, unused_only=True
    )
    if recent:
        return
    token = await issue_email_token(session, account, "unlock", now, UNLOCK_TTL)
    minutes = services.settings.lockout_minutes
    text = mail(
        language_of(account.language),
        "account_locked",
        name=account.name,
        failures=services.settings.lockout_failures,
        minutes=minutes,
        link=f"{services.settings.public_url}/unlock-account?token={token}",
    )
    queue_email(
        session,
        now,
        kind="account_locked",
        to=account.email,
        subject=text.subject,
        body=text.body,
    )


async def unlock_account(services: Services, token: str, request_id: str | None) -> None:
    """Lift the lock with the token of the e-mailed unlock link (single use)."""
    now = services.clock.now()
    async with services.write() as session:
        account = await consume_email_token(session, token, "unlock", now)
        account.locked_until = None
        account.failed_logins = 0
        await services.audit.append(
            session,
            AuditRecord(
                f"{account.role}:{account.id}",
                "account.unlock",
                "success",
                f"account:{account.id}",
                request_id,
            ),
            now,
        )


async def sign_out(
    services: Services, account_id: int | None, session_key: str, record: AuditRecord
) -> None:
    """End this session; its open sockets close."""
    async with services.write() as session:
        await end_session(session, account_id, session_key)
        await services.audit.append(session, record, services.clock.now())


async def sign_out_everywhere(services: Services, account_id: int, record: AuditRecord) -> None:
    """End every session of the account, this one included; all its sockets close."""
    async with services.write() as session:
        await end_sessions(session, account_id, reason="signed_out_everywhere")
        await services.audit.append(session, record, services.clock.now())
