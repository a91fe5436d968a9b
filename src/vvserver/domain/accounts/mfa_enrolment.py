"""Staff MFA enrolment: a new TOTP secret, its confirmation by a first code (which creates the
recovery codes), and new recovery codes later. All of it is audited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, MfaRecoveryCode
from vvserver.domain.accounts import totp
from vvserver.domain.accounts.mfa import open_session
from vvserver.domain.accounts.mfa_factors import (
    Attempt,
    accept_code,
    code_candidate,
    count_failure,
    locked_error,
    password_ok,
    pending_for,
)
from vvserver.domain.accounts.principal import STAFF_ROLES
from vvserver.domain.accounts.signin import SignedIn
from vvserver.domain.errors import Conflict, DomainError, Forbidden, Unauthenticated
from vvserver.domain.services import Services


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


async def _new_recovery_codes(services: Services) -> tuple[list[str], list[str]]:
    codes = totp.new_recovery_codes()
    hashes = await asyncio.to_thread(lambda: [services.passwords.hash(c) for c in codes])
    return codes, hashes


async def _replace_recovery_codes(
    session: AsyncSession, account_id: int, hashes: list[str], now: datetime
) -> None:
    await session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.account_id == account_id))
    session.add_all(
        MfaRecoveryCode(account_id=account_id, code_hash=h, created_at=now) for h in hashes
    )


async def begin_enrolment(
    services: Services,
    account_id: int,
    attempt: Attempt,
    *,
    pending_key: str | None = None,
    password: str | None = None,
) -> Enrolment:
    """Make a new TOTP secret for the account (replacing an unconfirmed one).

    From a pending login of stage ``enrol`` (``pending_key``), or from a signed-in session
    with the account's current password (re-authentication before changing a factor).
    """
    if password is not None and not await password_ok(services, account_id, password):
        async with services.write() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            record = attempt.record(account, "mfa.enrol_start", "failure", reason="bad password")
            await services.audit.append(session, record, services.clock.now())
        raise Unauthenticated("current password is wrong", code="bad_credentials")
    secret = totp.new_secret()
    now = services.clock.now()
    async with services.write() as session:
        if pending_key is not None:
            await pending_for(session, pending_key, account_id, "enrol", now)
        account = await session.get(Account, account_id, with_for_update=True)
        assert account is not None
        if account.role not in STAFF_ROLES:
            raise Forbidden("only staff accounts use a second factor")
        if account.mfa_enrolled_at is not None:
            raise Conflict("this account has a second factor already", code="mfa_already_enrolled")
        account.mfa_secret = totp.seal_secret(services.secret, account.id, secret)
        account.mfa_last_step = None
        await services.audit.append(
            session, attempt.record(account, "mfa.enrol_start", "success"), now
        )
        uri = totp.provisioning_uri(
            secret, account_name=account.email, issuer=services.settings.mfa_issuer
        )
    return Enrolment(secret, uri)


async def confirm_enrolment(
    services: Services,
    account_id: int,
    code: str,
    attempt: Attempt,
    *,
    pending_key: str | None = None,
) -> tuple[list[str], SignedIn | None]:
    """The first code from the authenticator confirms the secret; returns the recovery codes
    (shown once) and, from a pending login, the new session."""
    candidate = await code_candidate(services, account_id, code, recovery_ok=False)
    codes, hashes = await _new_recovery_codes(services) if candidate.step is not None else ([], [])
    now = services.clock.now()
    error: DomainError
    async with services.write() as session:
        pending = None
        if pending_key is not None:
            pending = await pending_for(session, pending_key, account_id, "enrol", now)
        account = await session.get(Account, account_id, with_for_update=True)
        assert account is not None
        if account.mfa_enrolled_at is not None:
            raise Conflict("this account has a second factor already", code="mfa_already_enrolled")
        if account.mfa_secret is None:
            raise Conflict("start the enrolment first", code="mfa_not_started")
        if (locked := locked_error(account, now)) is not None:
            error = locked
        else:
            method, reason = await accept_code(session, account, candidate, now)
            if method is None:
                error = await count_failure(
                    services, session, account, attempt, now, action="mfa.enrol", reason=reason
                )
            else:
                account.mfa_enrolled_at = now
                await _replace_recovery_codes(session, account.id, hashes, now)
                await services.audit.append(
                    session, attempt.record(account, "mfa.enrol", "success"), now
                )
                signed: SignedIn | None = None
                if pending is not None:
                    await session.delete(pending)
                    account.failed_logins = 0
                    account.locked_until = None
                    cookie, csrf = open_session(session, account.id, now)
                    signed = SignedIn(account, cookie, csrf)
                    record = attempt.record(
                        account, "auth.login", "success", email=account.email, mfa="enrolment"
                    )
                    await services.audit.append(session, record, now)
                return codes, signed
    raise error


async def regenerate_recovery_codes(
    services: Services, account_id: int, password: str, code: str, attempt: Attempt
) -> list[str]:
    """New recovery codes (the old ones stop working), after the password and a TOTP code."""
    if not await password_ok(services, account_id, password):
        raise Unauthenticated("current password is wrong", code="bad_credentials")
    candidate = await code_candidate(services, account_id, code, recovery_ok=False)
    codes, hashes = await _new_recovery_codes(services) if candidate.step is not None else ([], [])
    now = services.clock.now()
    error: DomainError
    async with services.write() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        assert account is not None
        if account.mfa_enrolled_at is None:
            raise Conflict("this account has no second factor yet", code="mfa_not_enrolled")
        if (locked := locked_error(account, now)) is not None:
            error = locked
        else:
            action = "mfa.recovery_codes_regenerate"
            method, reason = await accept_code(session, account, candidate, now)
            if method is None:
                error = await count_failure(
                    services, session, account, attempt, now, action=action, reason=reason
                )
            else:
                await _replace_recovery_codes(session, account.id, hashes, now)
                await services.audit.append(
                    session, attempt.record(account, action, "success"), now
                )
                return codes
    raise error
