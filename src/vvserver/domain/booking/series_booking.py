"""Booking one occurrence of a standing weekly visit, when its booking window opens.

Called by the scheduler (``scheduling.series_jobs``) for each due series. One write transaction
per occurrence: the series row is locked with ``FOR UPDATE SKIP LOCKED`` (another node handling
it skips it), its due date re-checked on the locked row, the visit booked through the normal
booking code (``book.book_in_transaction``: same locks, rules, weekly limits, atomic insert and
confirmation e-mail with the join link and .ics), the outcome recorded as a
``SeriesOccurrence`` (unique per series and date: the backstop) and ``next_date`` moved one week
on, all in that one commit. So every occurrence is handled exactly once, also with several
schedulers on one database, and a crash before the commit just handles it again later.

An occurrence that cannot be booked (the slot is taken, a blackout, a weekly limit, a
suspension...) is skipped: the visitor is e-mailed why, with the nearest free slots, and the
series page shows the same. The series ends (one notice) only when the visitor is no longer
approved for the person or the person is no longer in custody here (released, transferred out).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, SeriesOccurrence, VisitSeries
from vvserver.domain.accounts.scope import local_time_text
from vvserver.domain.booking.availability import Interval, free_slots
from vvserver.domain.booking.availability_store import (
    PersonContext,
    load_parties,
    load_person,
    load_query,
)
from vvserver.domain.booking.book import book_in_transaction
from vvserver.domain.booking.series import describe
from vvserver.domain.booking.series_time import WEEK, index_start, occurrence_start
from vvserver.domain.booking.slot_checks import Minor
from vvserver.domain.errors import DomainError
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, language_of
from vvserver.domain.notices.mail_text import (
    Phrase,
    local_date_time,
    mail,
    render_reason,
    text,
)
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

ACTOR = "system:scheduler"
NEAREST_FREE = 3
# Free slots are looked for this many days either side of the wanted one.
NEAREST_DAYS = 3
# Refusals that end the series instead of skipping one week.
ENDING_CODES = frozenset({"not_approved"})


async def book_next_occurrence(services: Services, series_id: int, now: datetime) -> str | None:
    """Handle the series' next occurrence if its booking window is open at ``now``.

    Returns "booked", "skipped", "ended", or None when there was nothing to do (not due, not
    active, or another scheduler holds the row).
    """
    async with services.write() as session:
        series = await session.scalar(
            select(VisitSeries).where(VisitSeries.id == series_id).with_for_update(skip_locked=True)
        )
        if series is None or series.state != "active":
            return None
        person = await load_person(session, series.person_id)
        if person is None:
            return None
        tz, local = person.tz, time.fromisoformat(series.local_time)
        due_start = index_start(series.next_date, local, tz)
        if due_start - timedelta(days=person.rules.lead_max_days) > now:
            if series.next_start_at != due_start:  # the person moved to another time zone
                series.next_start_at = due_start
            return None
        if person.status != "active":
            await _end(session, services, series, person, now, "the person is no longer here")
            return "ended"
        outcome = await _book_or_skip(session, services, series, person, now)
        series.next_date = series.next_date + WEEK
        series.next_start_at = index_start(series.next_date, local, tz)
        series.updated_at = now
    logger.info("series %s: occurrence %s", series_id, outcome)
    return outcome


async def _book_or_skip(
    session: AsyncSession,
    services: Services,
    series: VisitSeries,
    person: PersonContext,
    now: datetime,
) -> str:
    tz, local = person.tz, time.fromisoformat(series.local_time)
    start = occurrence_start(series.next_date, local, tz)
    minors = [
        Minor(str(m["name"]), date.fromisoformat(str(m["date_of_birth"]))) for m in series.minors
    ]
    try:
        if start is None:
            raise DomainError("the clocks change at that time that day", code="not_a_slot")
        issued = await book_in_transaction(
            session,
            services,
            now,
            visitor_id=series.visitor_id,
            person_id=series.person_id,
            start=start,
            minors=minors,
            actor=ACTOR,
        )
    except DomainError as refusal:
        if refusal.code in ENDING_CODES:
            await _end(
                session, services, series, person, now, refusal_reason(refusal, person.rules)
            )
            return "ended"
        wanted = start or index_start(series.next_date, local, tz)
        nearest = await nearest_free_slots(session, series, now, wanted)
        session.add(
            SeriesOccurrence(
                series_id=series.id,
                local_date=series.next_date,
                start_at=wanted,
                outcome="skipped",
                visit_id=None,
                reason_code=refusal.code,
                reason=refusal.message,
                alternatives=[
                    {"start": slot.start.isoformat(), "end": slot.end.isoformat()}
                    for slot in nearest
                ],
                created_at=now,
            )
        )
        why = refusal_reason(refusal, person.rules)
        await _tell_skipped(session, services, series, person, wanted, why, nearest, now)
        logger.info(
            "series %s: %s not booked (%s); %d free slots offered",
            series.id,
            series.next_date,
            refusal.code,
            len(nearest),
        )
        return "skipped"
    session.add(
        SeriesOccurrence(
            series_id=series.id,
            local_date=series.next_date,
            start_at=issued.view.visit.start_at,
            outcome="booked",
            visit_id=issued.view.visit.id,
            reason_code=None,
            reason=None,
            alternatives=[],
            created_at=now,
        )
    )
    return "booked"


async def nearest_free_slots(
    session: AsyncSession, series: VisitSeries, now: datetime, wanted: datetime
) -> list[Interval]:
    """Up to ``NEAREST_FREE`` slots the visitor could book instead, nearest to ``wanted`` first
    (within ``NEAREST_DAYS`` days of it; the visitor's own limits and bans apply)."""
    found = await load_parties(session, series.person_id, series.visitor_id)
    if found is None or not found[1].approved or found[0].status != "active":
        return []
    person, standing = found
    day = wanted.astimezone(person.tz).date()
    facts = await load_query(
        session,
        person,
        now=now,
        first_day=day - timedelta(days=NEAREST_DAYS),
        last_day=day + timedelta(days=NEAREST_DAYS),
        visitor_id=standing.visitor_id,
        not_before=standing.ban_ends_at,
    )
    slots = free_slots(facts.query)
    slots.sort(key=lambda s: (abs((s.start - wanted).total_seconds()), s.start))
    return [Interval(s.start, s.end) for s in slots[:NEAREST_FREE]]


async def _visitor(session: AsyncSession, series: VisitSeries) -> Account:
    visitor = await session.get(Account, series.visitor_id)
    if visitor is None:
        raise LookupError(f"series {series.id} refers to a missing visitor")
    return visitor


def _series_link(services: Services) -> str:
    return f"{services.settings.public_url.rstrip('/')}/visitor/series"


def _book_link(services: Services) -> str:
    return f"{services.settings.public_url.rstrip('/')}/visitor/book"


async def _tell_skipped(
    session: AsyncSession,
    services: Services,
    series: VisitSeries,
    person: PersonContext,
    wanted: datetime,
    why: str | Phrase,
    nearest: list[Interval],
    now: datetime,
) -> None:
    visitor = await _visitor(session, series)
    language = language_of(visitor.language)
    if nearest:
        times = "".join(
            f"- {local_date_time(slot.start, person.timezone, language, 'long')}\n"
            for slot in nearest
        )
        offers = text(
            language, "series_skipped.offers", times=times, book_link=_book_link(services)
        )
    else:
        offers = text(language, "series_skipped.no_offers")
    message = mail(
        language,
        "series_skipped",
        name=visitor.name,
        person=person.full_name,
        every=describe(series, language),
        when=local_time_text(wanted, person.timezone, language),
        reason=render_reason(why, language),
        offers=offers,
        series_link=_series_link(services),
    )
    queue_email(
        session,
        now,
        kind="series_skipped",
        to=visitor.email,
        subject=message.subject,
        body=message.body,
    )


async def _end(
    session: AsyncSession,
    services: Services,
    series: VisitSeries,
    person: PersonContext,
    now: datetime,
    why: str | Phrase,
) -> None:
    old = series.state
    english = render_reason(why, DEFAULT_LANGUAGE)
    series.state = "ended"
    series.end_reason = english
    series.updated_at = now
    visitor = await _visitor(session, series)
    language = language_of(visitor.language)
    message = mail(
        language,
        "series_ended",
        name=visitor.name,
        person=person.full_name,
        every=describe(series, language),
        reason=render_reason(why, language),
        series_link=_series_link(services),
    )
    queue_email(
        session,
        now,
        kind="series_ended",
        to=visitor.email,
        subject=message.subject,
        body=message.body,
    )
    logger.info("series %s: %s -> ended (%s)", series.id, old, english)


def refusal_reason(refusal: DomainError, rules: VisitingRules) -> str | Phrase:
    """Why the booking code refused an occurrence, to be written in each visitor's language.

    A refusal with numbers in it (a weekly limit, the booking window) becomes its ``Phrase``
    when that says exactly what the English message says; any other message is kept as it is
    and ``render_reason`` translates the fixed ones (``reason.<message>`` in the catalogs).
    """
    numbered = {
        "person_weekly_limit": Phrase(
            "reason.person_weekly_limit", {"count": rules.max_visits_per_person_week}
        ),
        "visitor_weekly_limit": Phrase(
            "reason.visitor_weekly_limit", {"count": rules.max_visits_per_visitor_week}
        ),
        "outside_booking_window": Phrase(
            "reason.booking_window",
            {"min_minutes": rules.lead_min_minutes, "max_days": rules.lead_max_days},
        ),
    }
    phrase = numbered.get(refusal.code)
    if phrase is not None and phrase.render(DEFAULT_LANGUAGE) == refusal.message:
        return phrase
    return refusal.message
