"""The confirmation e-mail of a booking or a move, written in the booking's own transaction.

Booking is the serialised hot path on SQLite, so the outbox row is written with one prepared
insert (``db.lean``) instead of an ORM flush.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Notification
from vvserver.db.prepared import Prepared
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.views import VisitView, visit_calendar_text

_NOTIFICATIONS = cast(Table, Notification.__table__)
_NOTIFICATION_COLUMNS = [c for c in _NOTIFICATIONS.columns if c.name != "id"]
_INSERT_NOTIFICATION = Prepared(
    insert(_NOTIFICATIONS).values(
        {c.name: bindparam(c.name, type_=c.type) for c in _NOTIFICATION_COLUMNS}
    )
)


async def queue_confirmation(
    session: AsyncSession,
    services: Services,
    now: datetime,
    view: VisitView,
    link: str,
    replaces: int | None,
    staff_reason: str | None = None,
) -> None:
    """The booking (or move) confirmation with the join link and the .ics, in the outbox."""
    visit = view.visit
    window = view.join_window_text()
    changed = f" (it replaces visit {replaces}, which is cancelled)" if replaces else ""
    if staff_reason:
        changed += f".\n\nThe facility moved your visit. Reason: {staff_reason}"
    body = (
        f"Hello {view.visitor_name},\n\n"
        f"your video visit with {view.person_name} is booked{changed}.\n\n"
        f"When: {view.local_span_text()}\n"
        f"Facility: {view.facility_name}\n"
        f"Visit number: {visit.id}\n\n"
        f"Join link ({window}):\n{link}\n\n"
        "Keep this link to yourself: it works for this visit only, and asking for a new one "
        "makes this one stop working.\n\n"
        f"{view.monitoring_notice}\n"
    )
    if visit.minors:
        names = ", ".join(str(m["name"]) for m in visit.minors)
        body += f"\nMinors joining you: {names}.\n"
    note = queue_email(
        session,
        now,
        kind="visit_rescheduled" if replaces else "visit_booked",
        to=view.visitor_email,
        subject=f"Video visit booked: {view.local_start_text()}",
        body=body,
        ics=visit_calendar_text(view, now=now, public_url=services.settings.public_url, url=link),
    )
    # The outbox row exactly as queue_email built it, written with one prepared insert instead
    # of an ORM flush (the booking transaction is the serialised hot path).
    session.expunge(note)
    await _INSERT_NOTIFICATION.rows(
        session, **{c.name: getattr(note, c.key) for c in _NOTIFICATION_COLUMNS}
    )
