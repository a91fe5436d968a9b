"""Visitor sign-up and e-mail verification.

Sign-up answers the same whether or not the address already has an account (no enumeration):
a new address gets the account and a verification link; the owner of a taken address gets an
e-mail saying someone tried to sign up with it, and nothing else changes.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account
from vvserver.domain.accounts.email_links import (
    consume_email_token,
    issue_email_token,
    normalise_email,
)
from vvserver.domain.accounts.password_policy import check_password_policy, context_words
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import InvalidInput
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, Language, language_of
from vvserver.domain.notices.mail_text import mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services

VERIFY_TTL = timedelta(days=3)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


async def queue_verification(
    services: Services, session: AsyncSession, account: Account, now: datetime
) -> None:
    token = await issue_email_token(session, account, "verify", now, VERIFY_TTL)
    link = f"{services.settings.public_url}/verify-email?token={token}"
    text = mail(language_of(account.language), "verify_email", name=account.name, link=link)
    queue_email(
        session,
        now,
        kind="verify_email",
        to=account.email,
        subject=text.subject,
        body=text.body,
    )


def _queue_taken_notice(
    services: Services, session: AsyncSession, account: Account, now: datetime
) -> None:
    text = mail(
        language_of(account.language),
        "signup_existing",
        name=account.name,
        signin_link=f"{services.settings.public_url}/signin",
        reset_link=f"{services.settings.public_url}/reset-password",
    )
    queue_email(
        session,
        now,
        kind="signup_existing",
        to=account.email,
        subject=text.subject,
        body=text.body,
    )


async def sign_up_visitor(
    services: Services,
    *,
    email: str,
    password: str,
    name: str,
    date_of_birth: date,
    phone: str,
    client: str,
    request_id: str | None,
    language: Language = DEFAULT_LANGUAGE,
) -> None:
    """Create the account, or tell the address's owner; the caller cannot tell which happened.

    ``language`` (the page's at sign-up) is the new account's e-mail language; the owner of a
    taken address is written to in their own account's language."""
    email = normalise_email(email)
    check_password_policy(password, context_words(email=email))
    now = services.clock.now()
    if date_of_birth > now.date():
        raise InvalidInput("date of birth is in the future", code="invalid_date_of_birth")
    if age_on(date_of_birth, now.date()) < 18:
        raise InvalidInput(
            "visitor accounts are for adults (18+); declare minors at booking instead",
            code="underage",
        )
    password_hash = await asyncio.to_thread(services.passwords.hash, password)
    try:
        async with services.write() as session:
            existing = await session.scalar(select(Account).where(Account.email == email))
            if existing is not None:
                await _tell_owner(services, session, existing, client, request_id, now)
                return
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
                language=language,
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
    except IntegrityError:
        # The same address signed up at the same moment (PostgreSQL): tell its owner.
        async with services.write() as session:
            existing = await session.scalar(select(Account).where(Account.email == email))
            if existing is not None:
                await _tell_owner(services, session, existing, client, request_id, now)


async def _tell_owner(
    services: Services,
    session: AsyncSession,
    account: Account,
    client: str,
    request_id: str | None,
    now: datetime,
) -> None:
    if account.active:
        _queue_taken_notice(services, session, account, now)
    await services.audit.append(
        session,
        AuditRecord(
            actor=f"anonymous@{client}",
            action="account.signup",
            outcome="failure",
            target=f"account:{account.id}",
            request_id=request_id,
            details={"reason": "e-mail address already has an account; owner told"},
        ),
        now,
    )


async def verify_email(services: Services, token: str, request_id: str | None) -> Account:
    now = services.clock.now()
    async with services.write() as session:
        account = await consume_email_token(session, token, "verify", now)
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
