"""Standing weekly visits: book each series' next occurrence when its booking window opens.

A series is due when ``next_start_at - lead_max_days <= now`` (the person's housing unit rules).
Candidates come from one indexed, bounded query per distinct ``lead_max_days``
(``ix_visit_series_state_next``); each occurrence is then handled in its own write transaction
with the series row locked (``domain.booking.series_booking``), so it runs exactly once even
with several schedulers. A series several weeks behind (after downtime) catches up one week per
transaction, at most ``WEEKS_PER_PASS`` per pass.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, ScalarSelect, select

from vvserver.db.models import Person, VisitSeries
from vvserver.domain.booking.series_booking import book_next_occurrence
from vvserver.domain.services import Services
from vvserver.scheduling.base import BATCH_SIZE, SchedulerReport
from vvserver.scheduling.rulebook import RuleBook, UnitGroup

logger = logging.getLogger(__name__)

WEEKS_PER_PASS = 4


def _in_group(group: UnitGroup) -> tuple[ColumnElement[bool], ...]:
    return () if group.unit_ids is None else (Person.unit_id.in_(group.unit_ids),)


async def book_due_series(
    services: Services, book: RuleBook, now: datetime, report: SchedulerReport
) -> None:
    for group in book.groups(lambda r: r.lead_max_days):
        horizon = now + timedelta(days=group.value)
        query = (
            select(VisitSeries.id)
            .join(Person, Person.id == VisitSeries.person_id)
            .where(
                VisitSeries.state == "active",
                VisitSeries.next_start_at <= horizon,
                *_in_group(group),
            )
            .order_by(VisitSeries.next_start_at)
            .limit(BATCH_SIZE)
        )
        async with services.read() as session:
            ids = list((await session.scalars(query)).all())
        report.note_batch(ids)
        for series_id in ids:
            for _week in range(WEEKS_PER_PASS):
                try:
                    outcome = await book_next_occurrence(services, series_id, now)
                except Exception:
                    report.errors += 1
                    logger.exception("series %s: booking its next occurrence failed", series_id)
                    break
                if outcome is None:
                    break
                if outcome == "booked":
                    report.series_booked += 1
                elif outcome == "skipped":
                    report.series_skipped += 1
                else:
                    report.series_ended += 1
                    break
            else:
                report.more = True  # still behind: the loop runs again at once


def series_deadlines(
    book: RuleBook, after: datetime
) -> list[tuple[ScalarSelect[datetime], timedelta]]:
    """For ``next_due``: the earliest future moment a series' booking window opens."""
    found: list[tuple[ScalarSelect[datetime], timedelta]] = []
    for group in book.groups(lambda r: r.lead_max_days):
        window = timedelta(days=group.value)
        query = (
            select(VisitSeries.next_start_at)
            .join(Person, Person.id == VisitSeries.person_id)
            .where(
                VisitSeries.state == "active",
                VisitSeries.next_start_at > after + window,
                *_in_group(group),
            )
            .order_by(VisitSeries.next_start_at)
            .limit(1)
            .scalar_subquery()
        )
        found.append((query, -window))
    return found
