"""Password reset by e-mailed link, and password change; both end the account's other sessions.

Reset links are limited per account (``RESETS_PER_HOUR``) besides the per-address rate limit of
the endpoint, so nobody can flood an inbox from many addresses. Every request answers the same,
whether or not the account exists or the limit was reached.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from vvserver.db.models import Account
from vvserver.domain.accounts.email_links import (
    account_of_token,
    consume_email_token,
    issue_email_token,
    normalise_email,
    tokens_issued_since,
)
from vvserver.domain.accounts.mfa import drop_pending_logins
from vvserver.domain.accounts.password_policy import account_context_words, check_password_policy
from vvserver.domain.accounts.revocation import end_sessions
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Unauthenticated
from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services

RESET_TTL = timedelta(hours=1)
RESETS_PER_HOUR = 3


async def request_password_reset(services: Services, email: str, request_id: str | None) -> None:
    """Queue a reset link if the account exists; answer the same either way (no enumeration)."""
    now = services.clock.now()
    async with services.write() as session:
        account = await session.scalar(
            select(Account).where(Account.email == normalise_email(email)).with_for_update()
        )
        if account is None or not account.active:
            return

        def record(action: str, outcome: str) -> AuditRecord:
            assert account is not None
            return AuditRecord(
                f"{account.role}:{account.id}", action, outcome, f"account:{account.id}", request_id
            )

        recent = await tokens_issued_since(
            session, account.id, "reset", now - timedelta(hours=1), RESET_TTL
        )
        if recent >= RESETS_PER_HOUR:
            await services.audit.append(
                session, record("account.password_reset_throttled", "failure"), now
            )
            return
        token = await issue_email_token(session, account, "reset", now, RESET_TTL)
        link = f"{services.settings.public_url}/reset-password?token={token}"
        text = mail(language_of(account.language), "password_reset", name=account.name, link=link)
        queue_email(
            session,
            now,
            kind="password_reset",
            to=account.email,
            subject=text.subject,
            body=text.body,
        )
        await services.audit.append(
            session, record("account.password_reset_requested", "success"), now
        )


async def reset_password(
    services: Services, token: str, password: str, request_id: str | None
) -> None:
    """Set a new password from a reset link; every session of the account ends."""
    now = services.clock.now()
    async with services.read() as session:
        # The policy is checked before the expensive hash; the link is used up below.
        _, probe = await account_of_token(session, token, "reset", now)
        check_password_policy(password, await account_context_words(session, probe))
    password_hash = await asyncio.to_thread(services.passwords.hash, password)
    async with services.write() as session:
        account = await consume_email_token(session, token, "reset", now)
        account.password_hash = password_hash
        account.failed_logins = 0
        account.locked_until = None
        await end_sessions(session, account.id, reason="password_reset")
        await drop_pending_logins(session, account.id)
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
    services: Services,
    account_id: int,
    current: str,
    new: str,
    record: AuditRecord,
    *,
    session_hash: str | None,
) -> None:
    """Change the password; the account's other sessions end, ``session_hash`` goes on."""
    async with services.read() as session:
        account = await session.get(Account, account_id)
        assert account is not None
        check_password_policy(new, await account_context_words(session, account))
    if not await asyncio.to_thread(services.passwords.verify, account.password_hash, current):
        raise Unauthenticated("current password is wrong", code="bad_credentials")
    password_hash = await asyncio.to_thread(services.passwords.hash, new)
    async with services.write() as session:
        row = await session.get(Account, account_id)
        assert row is not None
        row.password_hash = password_hash
        await end_sessions(
            session, account_id, reason="password_changed", keep_session_hash=session_hash
        )
        await services.audit.append(session, record, services.clock.now())
