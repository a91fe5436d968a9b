"""Queue an e-mail in the caller's transaction, so it is sent exactly when the change commits.

The transaction is also marked to wake the mailer once it has committed, so the e-mail leaves at
once rather than at the mailer's next safety-net pass (also when the caller writes the row with a
prepared insert instead of an ORM flush, as booking does).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Notification
from vvserver.db.wakeups import note_change


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
    note_change(session, "mailer")
    return note
