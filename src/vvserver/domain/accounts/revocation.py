"""Ending sessions and device credentials, so that nothing acts on them afterwards.

Each function deletes what makes the credential valid in the caller's write transaction and
queues a ``CredentialsRevokedEvent`` that ``Services.write`` publishes once the transaction has
committed: the session cache drops the matching entries and signaling closes the matching
sockets with 1008 (in a cluster, on every node that gets the event from the bus). Sockets also
check their credential before every message, so nothing acts in the moment between.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Session
from vvserver.domain.visits.bus import CredentialsRevokedEvent, publish_after_commit


async def end_session(session: AsyncSession, account_id: int | None, session_hash: str) -> None:
    """Sign-out: this one session ends (the account's other sessions go on)."""
    await session.execute(delete(Session).where(Session.token_hash == session_hash))
    publish_after_commit(
        session,
        CredentialsRevokedEvent(
            account_id=account_id, session_hash=session_hash, reason="signed_out"
        ),
    )


async def end_sessions(
    session: AsyncSession,
    account_id: int,
    *,
    reason: str,
    keep_session_hash: str | None = None,
) -> None:
    """Every session of the account ends, except ``keep_session_hash`` when given."""
    query = delete(Session).where(Session.account_id == account_id)
    if keep_session_hash is not None:
        query = query.where(Session.token_hash != keep_session_hash)
    await session.execute(query)
    publish_after_commit(
        session,
        CredentialsRevokedEvent(
            account_id=account_id, keep_session_hash=keep_session_hash, reason=reason
        ),
    )


def revoke_kiosk_token(session: AsyncSession, kiosk_id: int, *, reason: str) -> None:
    """The kiosk's device token was disabled or replaced (the caller changed the row)."""
    publish_after_commit(session, CredentialsRevokedEvent(kiosk_id=kiosk_id, reason=reason))
