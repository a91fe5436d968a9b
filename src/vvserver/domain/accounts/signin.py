"""Accounts: visitor sign-up, sign-in with lockout, sessions, e-mail verification, resets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, EmailToken, Session
from vvserver.domain.accounts.mfa import (
    PendingLogin,
    drop_pending_logins,
    login_stage,
    open_session,
    start_pending_login,
)
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, InvalidInput, Locked, Unauthenticated
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services

MIN_PASSWORD = 10
MAX_PASSWORD = 128
VERIFY_TTL = timedelta(days=3)
RESET_TTL = timedelta(hours=1)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="weak_password",
        )


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def issue_email_token(
    session: AsyncSession, account: Account, purpose: str, now: datetime, ttl: timedelta
) -> str:
    token = new_token()
    session.add(
        EmailToken(
            token_hash=token_hash(token),
            account_id=account.id,
            purpose=purpose,
            expires_at=now + ttl,
        )
    )
    return token


async def queue_verification(
    services: Services, session: AsyncSession, account: Account, now: datetime
) -> None:
    token = await issue_email_token(session, account, "verify", now, VERIFY_TTL)
    link = f"{services.settings.public_url}/verify-email?token={token}"
    queue_email(
        session,
        now,
        kind="verify_email",
        to=account.email,
        subject="Confirm your e-mail address",
        body=(
            f"Hello {account.name},\n\nconfirm your e-mail address for video visits by opening\n"
            f"{link}\n\nThe link is valid for 3 days. If you did not sign up, ignore this e-mail.\n"
        ),
    )


async def sign_up_visitor(
    services: Services,
    *,
    email: str,
    password: str,
    name: str,
    date_of_birth: date,
    phone: str,
    request_id: str | None,
) -> Account:
    check_password_policy(password)
    now = services.clock.now()
    if date_of_birth > now.date():
        raise InvalidInput("date of birth is in the future", code="invalid_date_of_birth")
    if age_on(date_of_birth, now.date()) < 18:
        raise InvalidInput(
            "visitor accounts are for adults (18+); declare minors at booking instead",
            code="underage",
        )
    password_hash = await asyncio.to_thread(services.passwords.hash, password)
    email = normalise_email(email)
    async with services.write() as session:
        taken = await session.scalar(select(Account.id).where(Account.email == email))
        if taken is not None:
            raise Conflict("an account with this e-mail already exists", code="email_taken")
        account = Account(
            email=email,
            password_hash=password_hash,
            role="visitor",
            name=name,
            active=True,
            failed_logins=0,
            created_at=now,
            date_of_birth=date_of_birth,
            phone=phone,
            id_status="none",
        )
        session.add(account)
        await session.flush()
        await queue_verification(services, session, account, now)
        await services.audit.append(
            session,
            AuditRecord(
                actor=f"visitor:{account.id}",
                action="account.signup",
                outcome="success",
                target=f"account:{account.id}",
                request_id=request_id,
            ),
            now,
        )
    return account


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: Account
    cookie: str
    csrf_token: str


async def sign_in(
    services: Services, email: str, password: str, *, client: str, request_id: str | None
) -> SignedIn | PendingLogin:
    """Check the password; lock the account for ``lockout_minutes`` after too many failures.

    Staff who must give a second factor get a pending login instead of a session (see
    ``mfa.py``). Every attempt, successful or not, is audited (CJIS 5.4.1.1).
    """
    settings = services.settings
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
        await services.audit_now(record("failure", reason="unknown or inactive account"))
        raise Unauthenticated("wrong e-mail or password", code="bad_credentials")
    raise_after: Locked | Unauthenticated
    async with services.write() as session:
        current = await session.get(Account, account.id, with_for_update=True)
        assert current is not None
        if current.locked_until is not None and current.locked_until > now:
            await services.audit.append(session, record("failure", reason="locked"), now)
            minutes = max(1, int((current.locked_until - now).total_seconds() // 60) + 1)
            raise_after = Locked(
                f"account locked after repeated failures; try again in {minutes} min",
                details={"locked_until": current.locked_until.isoformat()},
            )
        elif not ok:
            current.failed_logins += 1
            await services.audit.append(
                session,
                record("failure", reason="bad password", failures=current.failed_logins),
                now,
            )
            if current.failed_logins >= settings.lockout_failures:
                current.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                current.failed_logins = 0
                await services.audit.append(session, record("success", action="auth.lockout"), now)
            raise_after = Unauthenticated("wrong e-mail or password", code="bad_credentials")
        elif (stage := await login_stage(session, current, settings)) is not None:
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


async def sign_out(services: Services, session_key: str, record: AuditRecord) -> None:
    async with services.write() as session:
        await session.execute(delete(Session).where(Session.token_hash == session_key))
        services.sessions.forget(session_key)
        await services.audit.append(session, record, services.clock.now())


async def _consume_token(session: AsyncSession, token: str, purpose: str, now: datetime) -> Account:
    row = await session.get(EmailToken, token_hash(token))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at < now:
        raise InvalidInput("this link is invalid or has expired", code="invalid_token")
    row.used_at = now
    account = await session.get(Account, row.account_id)
    if account is None or not account.active:
        raise InvalidInput("this link is invalid or has expired", code="invalid_token")
    return account


async def verify_email(services: Services, token: str, request_id: str | None) -> Account:
    now = services.clock.now()
    async with services.write() as session:
        account = await _consume_token(session, token, "verify", now)
        account.email_verified_at = account.email_verified_at or now
        await services.audit.append(
            session,
            AuditRecord(
                f"{account.role}:{account.id}",
                "account.verify_email",
                "success",
                f"account:{account.id}",
                request_id,
            ),
            now,
        )
    return account


async def request_password_reset(services: Services, email: str, request_id: str | None) -> None:
    """Queue a reset link if the account exists; answer the same either way (no enumeration)."""
    now = services.clock.now()
    async with services.write() as session:
        account = await session.scalar(
            select(Account).where(Account.email == normalise_email(email))
        )
        if account is None or not account.active:
            return
        token = await issue_email_token(session, account, "reset", now, RESET_TTL)
        link = f"{services.settings.public_url}/reset-password?token={token}"
        queue_email(
            session,
            now,
            kind="password_reset",
            to=account.email,
            subject="Reset your password",
            body=(
                f"Hello {account.name},\n\nto choose a new password open\n{link}\n\n"
                "The link is valid for 1 hour. If you did not ask for this, ignore this e-mail.\n"
            ),
        )
        await services.audit.append(
            session,
            AuditRecord(
                f"{account.role}:{account.id}",
                "account.password_reset_requested",
                "success",
                f"account:{account.id}",
                request_id,
            ),
            now,
        )


async def reset_password(
    services: Services, token: str, password: str, request_id: str | None
) -> None:
    check_password_policy(password)
    password_hash = await asyncio.to_thread(services.passwords.hash, password)
    now = services.clock.now()
    async with services.write() as session:
        account = await _consume_token(session, token, "reset", now)
        account.password_hash = password_hash
        account.failed_logins = 0
        account.locked_until = None
        # A reset ends every existing session of the account.
        await session.execute(delete(Session).where(Session.account_id == account.id))
        await drop_pending_logins(session, account.id)
        services.sessions.forget_account(account.id)
        await services.audit.append(
            session,
            AuditRecord(
                f"{account.role}:{account.id}",
                "account.password_reset",
                "success",
                f"account:{account.id}",
                request_id,
            ),
            now,
        )


async def change_password(
    services: Services, account_id: int, current: str, new: str, record: AuditRecord
) -> None:
    check_password_policy(new)
    async with services.read() as session:
        account = await session.get(Account, account_id)
    assert account is not None
    if not await asyncio.to_thread(services.passwords.verify, account.password_hash, current):
        raise Unauthenticated("current password is wrong", code="bad_credentials")
    password_hash = await asyncio.to_thread(services.passwords.hash, new)
    async with services.write() as session:
        row = await session.get(Account, account_id)
        assert row is not None
        row.password_hash = password_hash
        await services.audit.append(session, record, services.clock.now())
