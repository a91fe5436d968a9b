"""Staff MFA: the second step of sign-in and the checks enrolment shares (codes, lockout).

Codes are checked in three phases so no slow work holds the serialised write lock: read the
sealed secret and the unused recovery-code hashes, compare outside any transaction (argon2 in a
thread), then accept in one write transaction that re-checks the state (a TOTP step must be
newer than the last one used, a recovery code still unused). Wrong codes count toward the
account's sign-in lockout (``lockout_failures``), like wrong passwords. Everything is audited.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, MfaPendingLogin, MfaRecoveryCode
from vvserver.domain.accounts import totp
from vvserver.domain.accounts.mfa import (
    drop_pending_logins,
    open_session,
    required_by_policy,
)
from vvserver.domain.accounts.signin import SignedIn
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, DomainError, Locked, Unauthenticated
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Where a request comes from, for the audit records it leaves."""

    client: str
    request_id: str | None

    def record(self, account: Account, action: str, outcome: str, **details: object) -> AuditRecord:
        return AuditRecord(
            actor=f"{account.role}:{account.id}",
            action=action,
            outcome=outcome,
            target=f"account:{account.id}",
            request_id=self.request_id,
            details={"client": self.client, **details},
        )


@dataclass(frozen=True, slots=True)
class Verified:
    signed_in: SignedIn
    method: str  # "totp" or "recovery_code"
    recovery_codes_left: int | None


@dataclass(frozen=True, slots=True)
class MfaStatus:
    enrolled: bool
    required: bool
    enrolled_at: datetime | None
    recovery_codes_left: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the code matched before the write transaction: a TOTP step or a recovery code."""

    step: int | None = None
    recovery_id: int | None = None


EXPIRED = "this sign-in has expired; enter your password again"


async def code_candidate(
    services: Services, account_id: int, code: str, *, recovery_ok: bool
) -> Candidate:
    async with services.read() as session:
        account = await session.get(Account, account_id)
        if account is None or account.mfa_secret is None:
            return Candidate()
        sealed = account.mfa_secret
        hashes: list[tuple[int, str]] = []
        if recovery_ok and account.mfa_enrolled_at is not None:
            rows = await session.execute(
                select(MfaRecoveryCode.id, MfaRecoveryCode.code_hash).where(
                    MfaRecoveryCode.account_id == account_id, MfaRecoveryCode.used_at.is_(None)
                )
            )
            hashes = [(row_id, code_hash) for row_id, code_hash in rows.all()]
    try:
        secret = totp.open_secret(services.secret, account_id, sealed)
    except totp.SecretUnreadable:
        logger.error("account %s: the TOTP secret does not decrypt", account_id)
        raise Conflict(
            "this account's second factor cannot be read; an administrator must reset it",
            code="mfa_unreadable",
        ) from None
    if totp.looks_like_totp(code):
        window = services.settings.mfa_totp_window
        return Candidate(step=totp.matching_step(secret, code, services.clock.now(), window))
    normal = totp.normalise_recovery_code(code)
    if normal is None or not hashes:
        return Candidate()

    def find() -> int | None:
        for row_id, code_hash in hashes:
            if services.passwords.verify(code_hash, normal):
                return row_id
        return None

    return Candidate(recovery_id=await asyncio.to_thread(find))


async def accept_code(
    session: AsyncSession, account: Account, candidate: Candidate, now: datetime
) -> tuple[str | None, str]:
    """Use the candidate now: (method, "") or (None, why it was refused)."""
    if candidate.step is not None:
        if account.mfa_last_step is not None and candidate.step <= account.mfa_last_step:
            return None, "code already used"
        account.mfa_last_step = candidate.step
        return "totp", ""
    if candidate.recovery_id is not None:
        row = await session.get(MfaRecoveryCode, candidate.recovery_id, with_for_update=True)
        if row is None or row.account_id != account.id or row.used_at is not None:
            return None, "recovery code already used"
        row.used_at = now
        return "recovery_code", ""
    return None, "wrong code"


def locked_error(account: Account, now: datetime) -> Locked | None:
    if account.locked_until is None or account.locked_until <= now:
        return None
    minutes = max(1, int((account.locked_until - now).total_seconds() // 60) + 1)
    return Locked(
        f"account locked after repeated failures; try again in {minutes} min",
        details={"locked_until": account.locked_until.isoformat()},
    )


async def count_failure(
    services: Services,
    session: AsyncSession,
    account: Account,
    attempt: Attempt,
    now: datetime,
    *,
    action: str,
    reason: str,
) -> DomainError:
    """Count a wrong code toward the lockout; at the limit lock the account and drop its
    pending logins. Returns the error to raise once the transaction has committed."""
    settings = services.settings
    account.failed_logins += 1
    await services.audit.append(
        session,
        attempt.record(account, action, "failure", reason=reason, failures=account.failed_logins),
        now,
    )
    if account.failed_logins >= settings.lockout_failures:
        account.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        account.failed_logins = 0
        await drop_pending_logins(session, account.id)
        await services.audit.append(
            session, attempt.record(account, "auth.lockout", "success"), now
        )
        locked = locked_error(account, now)
        assert locked is not None
        return locked
    return Unauthenticated("wrong code", code="bad_code")


async def pending_for(
    session: AsyncSession, key: str, account_id: int, stage: str, now: datetime
) -> MfaPendingLogin:
    pending = await session.get(MfaPendingLogin, key, with_for_update=True)
    if pending is None or pending.account_id != account_id or pending.expires_at <= now:
        raise Unauthenticated(EXPIRED, code="mfa_expired")
    if pending.stage != stage:
        if pending.stage == "enrol":
            raise Conflict("set up the second factor first", code="mfa_enrolment_required")
        raise Conflict("this account has a second factor already", code="mfa_already_enrolled")
    return pending


async def codes_left(session: AsyncSession, account_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(MfaRecoveryCode)
        .where(MfaRecoveryCode.account_id == account_id, MfaRecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


async def password_ok(services: Services, account_id: int, password: str) -> bool:
    async with services.read() as session:
        stored = await session.scalar(select(Account.password_hash).where(Account.id == account_id))
    return await asyncio.to_thread(services.passwords.verify, stored, password)


async def verify_pending_login(
    services: Services, key: str, account_id: int, code: str, attempt: Attempt
) -> Verified:
    """The second step of sign-in: a TOTP or recovery code turns the pending login into a
    session (the pending login is used up)."""
    candidate = await code_candidate(services, account_id, code, recovery_ok=True)
    now = services.clock.now()
    error: DomainError
    async with services.write() as session:
        pending = await pending_for(session, key, account_id, "verify", now)
        account = await session.get(Account, account_id, with_for_update=True)
        assert account is not None
        if not account.active:
            raise Unauthenticated(EXPIRED, code="mfa_expired")
        if (locked := locked_error(account, now)) is not None:
            await services.audit.append(
                session, attempt.record(account, "mfa.verify", "failure", reason="locked"), now
            )
            error = locked
        else:
            method, reason = await accept_code(session, account, candidate, now)
            if method is None:
                error = await count_failure(
                    services, session, account, attempt, now, action="mfa.verify", reason=reason
                )
            else:
                await session.delete(pending)
                account.failed_logins = 0
                account.locked_until = None
                cookie, csrf = open_session(session, account.id, now)
                left: int | None = None
                if method == "recovery_code":
                    left = await codes_left(session, account.id)
                    await services.audit.append(
                        session,
                        attempt.record(account, "mfa.recovery_code_used", "success", left=left),
                        now,
                    )
                await services.audit.append(
                    session, attempt.record(account, "mfa.verify", "success", method=method), now
                )
                await services.audit.append(
                    session,
                    attempt.record(
                        account, "auth.login", "success", email=account.email, mfa=method
                    ),
                    now,
                )
                return Verified(SignedIn(account, cookie, csrf), method, left)
    raise error


async def mfa_status(services: Services, account_id: int) -> MfaStatus:
    async with services.read() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        return MfaStatus(
            enrolled=account.mfa_enrolled_at is not None,
            required=await required_by_policy(session, account, services.settings),
            enrolled_at=account.mfa_enrolled_at,
            recovery_codes_left=await codes_left(session, account_id),
        )
