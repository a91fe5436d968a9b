"""When the scheduler next has work: the earliest job deadline after a pass.

Every job's condition is "some row's time column passed a threshold"; the earliest future
crossing is one indexed ``ORDER BY .. LIMIT 1`` query per job (and per rule group), all in one
read transaction. Only deadlines strictly after the pass's ``now`` count: work due at ``now``
was the pass's to do, and work it left (a failing row, a visit that waits for the ending job)
is retried by the safety-net pass, never in a tight loop.

The deadlines mirror the jobs in ``visit_jobs``, ``reminders`` and ``recordings``:

* join window: scheduled visits, ``start - join_window_minutes``;
* reminder: not started, no reminder yet, ``start - reminder_minutes``;
* kiosk start push: not started, not pushed, ``start``;
* no-show: not started, ``start + no_show_minutes``; a visit that was live and is back in
  ready waits until ``end + OVERRUN_GRACE``;
* overrun: live visits, ``end + OVERRUN_GRACE``;
* purge: finished recordings, not held, ``purge_after``;
* standing weekly visits: active series, ``next_start_at - lead_max_days`` (``series_jobs``).
* Visit now: ringing visits, ``ring_until`` (an unanswered ring ends as declined).

Setting ``purge_after`` on a finished recording has no deadline: the next pass does it (it only
dates a purge days away).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, ScalarSelect, select
from sqlalchemy.orm import InstrumentedAttribute

from vvserver.db.models import Recording, Visit
from vvserver.domain.services import Services
from vvserver.scheduling.rulebook import RuleBook, UnitGroup
from vvserver.scheduling.series_jobs import series_deadlines
from vvserver.scheduling.visit_jobs import NOT_STARTED, OVERRUN_GRACE

ZERO = timedelta(0)


def _earliest(
    column: InstrumentedAttribute[datetime], *conditions: ColumnElement[bool]
) -> ScalarSelect[datetime]:
    return select(column).where(*conditions).order_by(column).limit(1).scalar_subquery()


def _unit_filter(group: UnitGroup) -> tuple[ColumnElement[bool], ...]:
    return () if group.unit_ids is None else (Visit.unit_id.in_(group.unit_ids),)


def _visit_deadlines(
    book: RuleBook, after: datetime
) -> list[tuple[ScalarSelect[datetime], timedelta]]:
    start = Visit.start_at
    found: list[tuple[ScalarSelect[datetime], timedelta]] = []
    for group in book.groups(lambda r: r.join_window_minutes):
        window = timedelta(minutes=group.value)
        conditions = (Visit.state == "scheduled", start > after + window, *_unit_filter(group))
        found.append((_earliest(start, *conditions), -window))
    # Visits not started, one state at a time: each query walks ix_visits_state_start from its
    # threshold and stops at the first row.
    for state in NOT_STARTED:
        for group in book.groups(lambda r: r.reminder_minutes):
            lead = timedelta(minutes=group.value)
            conditions = (
                Visit.state == state,
                start > after + lead,
                Visit.reminder_sent_at.is_(None),
                *_unit_filter(group),
            )
            found.append((_earliest(start, *conditions), -lead))
        conditions = (Visit.state == state, start > after, Visit.start_pushed_at.is_(None))
        found.append((_earliest(start, *conditions), timedelta(0)))
        for group in book.groups(lambda r: r.no_show_minutes):
            wait = timedelta(minutes=group.value)
            conditions = (Visit.state == state, start > after - wait, *_unit_filter(group))
            found.append((_earliest(start, *conditions), wait))
        # Back in ready (or scheduled) after being live: it ends at end_at + grace.
        conditions = (Visit.state == state, start <= after, Visit.end_at > after - OVERRUN_GRACE)
        found.append((_earliest(Visit.end_at, *conditions), OVERRUN_GRACE))
    conditions = (Visit.state == "live", Visit.end_at > after - OVERRUN_GRACE)
    found.append((_earliest(Visit.end_at, *conditions), OVERRUN_GRACE))
    ring_until: InstrumentedAttribute[datetime] = Visit.ring_until  # type: ignore[assignment]
    found.append((_earliest(ring_until, Visit.state == "ringing", ring_until > after), ZERO))
    return found


def _purge_deadline(after: datetime) -> ScalarSelect[datetime]:
    purge_after: InstrumentedAttribute[datetime] = Recording.purge_after  # type: ignore[assignment]
    return _earliest(
        purge_after,
        Recording.state == "finished",
        purge_after > after,
        Recording.legal_hold.is_(False),
        Recording.purged_at.is_(None),
    )


async def next_due_at(
    services: Services, after: datetime, *, book: RuleBook | None = None
) -> datetime | None:
    """The earliest moment strictly after ``after`` when a scheduler job has work (None: none).

    One statement: a row of scalar subqueries. ``book`` is the pass's rule book (else loaded).
    """
    async with services.read() as session:
        if book is None:
            book = await RuleBook.load(session)
        deadlines = [
            *_visit_deadlines(book, after),
            (_purge_deadline(after), timedelta(0)),
            *series_deadlines(book, after),
        ]
        row = (await session.execute(select(*(query for query, _ in deadlines)))).one()
    due = [
        found + offset
        for found, (_, offset) in zip(row, deadlines, strict=True)
        if found is not None and found + offset > after
    ]
    return min(due, default=None)
