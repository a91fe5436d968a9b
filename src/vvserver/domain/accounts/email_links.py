"""Single-use links e-mailed to an account's owner (verify, reset, unlock): only hashes stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, EmailToken
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.errors import InvalidInput


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


async def tokens_issued_since(
    session: AsyncSession,
    account_id: int,
    purpose: str,
    since: datetime,
    ttl: timedelta,
    *,
    unused_only: bool = False,
) -> int:
    """How many ``purpose`` links (valid ``ttl``) were issued to the account from ``since`` on."""
    query = (
        select(func.count())
        .select_from(EmailToken)
        .where(
            EmailToken.account_id == account_id,
            EmailToken.purpose == purpose,
            EmailToken.expires_at > since + ttl,
        )
    )
    if unused_only:
        query = query.where(EmailToken.used_at.is_(None))
    return int(await session.scalar(query) or 0)


async def account_of_token(
    session: AsyncSession, token: str, purpose: str, now: datetime
) -> tuple[EmailToken, Account]:
    """The unused, unexpired link and the active account it was issued to; ``invalid_token``."""
    row = await session.get(EmailToken, token_hash(token))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at < now:
        raise InvalidInput("this link is invalid or has expired", code="invalid_token")
    account = await session.get(Account, row.account_id)
    if account is None or not account.active:
        raise InvalidInput("this link is invalid or has expired", code="invalid_token")
    return row, account


async def consume_email_token(
    session: AsyncSession, token: str, purpose: str, now: datetime
) -> Account:
    """Use a link once (in a write transaction); the account it was issued to."""
    row, account = await account_of_token(session, token, purpose, now)
    row.used_at = now
    return account
