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
from vvserver.domain.notices.mail_text import mail, text
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
    language = view.visitor_language
    changed = text(language, "visit_booked.replaces", visit_id=replaces) if replaces else ""
    if staff_reason:
        changed += text(language, "visit_booked.moved", reason=staff_reason)
    mail_text = mail(
        language,
        "visit_booked",
        name=view.visitor_name,
        person=view.person_name,
        changed=changed,
        span=view.local_span_text(language),
        facility=view.facility_name,
        visit_id=visit.id,
        window=view.join_window_text(language),
        link=link,
        notice=view.monitoring_notice_in(language),
        when=view.local_start_text(language),
    )
    body = mail_text.body
    if visit.minors:
        names = ", ".join(str(m["name"]) for m in visit.minors)
        body += text(language, "visit_booked.minors", names=names)
    note = queue_email(
        session,
        now,
        kind="visit_rescheduled" if replaces else "visit_booked",
        to=view.visitor_email,
        subject=mail_text.subject,
        body=body,
        ics=visit_calendar_text(
            view,
            now=now,
            public_url=services.settings.public_url,
            url=link,
            language=language,
        ),
    )
    # The outbox row exactly as queue_email built it, written with one prepared insert instead
    # of an ORM flush (the booking transaction is the serialised hot path).
    session.expunge(note)
    await _INSERT_NOTIFICATION.rows(
        session, **{c.name: getattr(note, c.key) for c in _NOTIFICATION_COLUMNS}
    )
