"""Visit reminders: one e-mail per visit, ``reminder_minutes`` before the start, with a fresh link.

The reminder is queued (``notify.outbox.queue_email``) in the same write transaction that sets
``reminder_sent_at`` and stores the new join token's hash, so it is queued exactly once however
often the scheduler restarts. Visits booked inside the reminder window already got their
confirmation, and visits whose start has passed need no reminder: both only get the marker.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Person, Visit
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import date_time, mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import issue_join_token
from vvserver.scheduling.base import BATCH_SIZE, SchedulerReport, each_locked_visit
from vvserver.scheduling.rulebook import RuleBook

logger = logging.getLogger(__name__)

NOT_STARTED = ("scheduled", "ready")


def join_link(services: Services, token: str) -> str:
    return f"{services.settings.public_url.rstrip('/')}/join/{token}"


async def _queue_reminder(
    services: Services,
    session: AsyncSession,
    book: RuleBook,
    visit: Visit,
    rules: VisitingRules,
    now: datetime,
) -> None:
    visitor = await session.get(Account, visit.visitor_id)
    person = await session.get(Person, visit.person_id)
    if visitor is None or person is None:
        raise LookupError(f"visit {visit.id} refers to a missing visitor or person")
    token, digest = issue_join_token(
        services.secret,
        visit_id=visit.id,
        visitor_id=visit.visitor_id,
        start_at=visit.start_at,
        end_at=visit.end_at,
        join_window_minutes=rules.join_window_minutes,
        issued_at=now,
    )
    # The new link replaces the one from the booking confirmation.
    visit.join_token_hash = digest
    zone = book.zone(visit.facility_id)
    local_start = visit.start_at.astimezone(zone)
    local_end = visit.end_at.astimezone(zone)
    person_name = f"{person.first_name} {person.last_name}"
    facility = book.facility_name(visit.facility_id)
    language = language_of(visitor.language)
    mail_text = mail(
        language,
        "visit_reminder",
        name=visitor.name,
        person=person_name,
        facility=facility,
        when=date_time(local_start, language, "day"),
        start=f"{local_start:%H:%M}",
        end=f"{local_end:%H:%M}",
        zone=local_start.tzname(),
        minutes=rules.join_window_minutes,
        link=join_link(services, token),
        time=f"{local_start:%H:%M}",
    )
    queue_email(
        session,
        now,
        kind="visit_reminder",
        to=visitor.email,
        subject=mail_text.subject,
        body=mail_text.body,
    )


async def send_reminders(
    services: Services, book: RuleBook, now: datetime, report: SchedulerReport
) -> None:
    for group in book.groups(lambda r: r.reminder_minutes):
        horizon = now + timedelta(minutes=group.value)
        query = select(Visit.id).where(
            Visit.state.in_(NOT_STARTED),
            Visit.start_at <= horizon,
            Visit.reminder_sent_at.is_(None),
        )
        if group.unit_ids is not None:
            query = query.where(Visit.unit_id.in_(group.unit_ids))
        async with services.read() as session:
            ids = list(
                (await session.scalars(query.order_by(Visit.start_at).limit(BATCH_SIZE))).all()
            )
        report.note_batch(ids)

        async def remind_one(session: AsyncSession, visit: Visit) -> bool | None:
            rules = book.for_unit(visit.unit_id)
            lead = timedelta(minutes=rules.reminder_minutes)
            if visit.state not in NOT_STARTED or visit.reminder_sent_at is not None:
                return None
            if visit.start_at - lead > now:
                return None
            visit.reminder_sent_at = now
            visit.updated_at = now
            if visit.start_at <= now or visit.created_at > visit.start_at - lead:
                return False  # started already, or booked inside the window: marker only
            await _queue_reminder(services, session, book, visit, rules, now)
            return True

        outcomes = await each_locked_visit(
            services, ids, job="reminder", report=report, apply=remind_one
        )
        report.reminders_queued += outcomes.count(True)
        report.reminders_skipped += outcomes.count(False)
