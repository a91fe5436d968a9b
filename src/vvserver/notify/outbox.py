"""Queue an e-mail in the caller's transaction, so it is sent exactly when the change commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Notification


def queue_email(
    session: AsyncSession,
    now: datetime,
    *,
    kind: str,
    to: str,
    subject: str,
    body: str,
    ics: str | None = None,
) -> Notification:
    note = Notification(
        kind=kind,
        to_email=to,
        subject=subject,
        body=body,
        ics=ics,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(note)
    return note
