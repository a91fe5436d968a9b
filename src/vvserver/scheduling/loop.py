"""One scheduler pass (all jobs, in a fixed order) and the worker loop around it.

The loop does not poll: after a pass it sleeps until the earliest job deadline in the database
(``next_due``), until a commit that changes visits or rules wakes it (``wakeups``), or at most
``scheduler_interval_s`` (the safety net). An idle server therefore runs a pass about once per
``scheduler_interval_s`` instead of continuously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitEventBus, VisitEvents
from vvserver.domain.visits.ring_answer import end_missed_rings
from vvserver.scheduling.base import ACTOR, SchedulerReport
from vvserver.scheduling.next_due import next_due_at
from vvserver.scheduling.recordings import purge_expired, set_purge_dates
from vvserver.scheduling.reminders import send_reminders
from vvserver.scheduling.rulebook import RuleBook
from vvserver.scheduling.series_jobs import book_due_series
from vvserver.scheduling.visit_jobs import (
    complete_overruns,
    end_unattended,
    open_join_windows,
    push_starts,
)

logger = logging.getLogger(__name__)

# Least time between the starts of two passes (wake-ups within it wait for its end).
MIN_PASS_GAP_S = 0.5
# Sleep this much past a deadline (timers may fire a little early).
DUE_SLACK_S = 0.01
# A pass with failures (or a failed pass) is tried again this soon, at the latest.
RETRY_AFTER_ERROR_S = 5.0


async def scheduler_pass(
    services: Services,
    now: datetime,
    events: VisitEvents | None = None,
    *,
    book: RuleBook | None = None,
) -> SchedulerReport:
    """Run every timed job once for ``now``. A failing job is logged; the others still run.

    Order matters: visits past their deadlines end first, so a visit found late (after downtime)
    is closed rather than opened, reminded and pushed to the kiosk.
    """
    bus: VisitEvents = events if events is not None else VisitEventBus()
    report = SchedulerReport()
    if book is None:
        book = await load_rule_book(services)
    jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("rings", lambda: _missed_rings(services, now, report)),
        ("overruns", lambda: complete_overruns(services, now, report)),
        ("no_shows", lambda: end_unattended(services, book, now, report)),
        ("join_window", lambda: open_join_windows(services, book, now, report)),
        ("reminders", lambda: send_reminders(services, book, now, report)),
        ("start_push", lambda: push_starts(services, now, bus, report)),
        ("purge_dates", lambda: set_purge_dates(services, book, now, report)),
        ("purge", lambda: purge_expired(services, now, report)),
        ("series", lambda: book_due_series(services, book, now, report)),
    ]
    for name, job in jobs:
        try:
            await job()
        except Exception:
            report.errors += 1
            logger.exception("scheduler job %s failed", name)
    if report.changed_anything() or report.errors:
        logger.info("scheduler pass at %s: %s", now.isoformat(), report)
    return report


async def _missed_rings(services: Services, now: datetime, report: SchedulerReport) -> None:
    """Visit now: rings nobody answered by their ``ring_until`` end as declined."""
    report.rings_missed += len(await end_missed_rings(services, now, ACTOR))


async def load_rule_book(services: Services) -> RuleBook:
    async with services.read() as session:
        return await RuleBook.load(session)


def event_bus_of(services: Services) -> VisitEventBus:
    """The app's visit event bus (``Services.events`` once it exists), else a private one."""
    bus = getattr(services, "events", None)
    return bus if isinstance(bus, VisitEventBus) else VisitEventBus()


def seconds_until(due: datetime | None, now: datetime, cap: float) -> float:
    """How long to sleep for a deadline ``due`` (None: none known), at most ``cap``.

    A little slack past the deadline, so a timer that fires a hair early does not run a pass
    that finds nothing and then sleeps again for a millisecond.
    """
    if due is None:
        return cap
    return min(cap, max((due - now).total_seconds(), 0.0) + DUE_SLACK_S)


async def run_scheduler(services: Services, *, events: VisitEvents | None = None) -> None:
    """Worker loop: a pass, then sleep until the next deadline or a wake-up; exits when cancelled.

    ``scheduler_interval_s`` is the longest sleep (the safety net for work no deadline or wake-up
    announces); after a failure the next pass comes within ``RETRY_AFTER_ERROR_S``. Wake-ups
    come from commits that change visits or rules (``scheduling.wakeups``). Passes are at least
    ``MIN_PASS_GAP_S`` apart, so a burst of bookings costs two passes a second, not one each.
    """
    bus: VisitEvents = events if events is not None else event_bus_of(services)
    cap = services.settings.scheduler_interval_s
    wake = services.wakeups.scheduler
    timer = asyncio.get_running_loop()
    while True:
        started = timer.time()
        # Cleared before the pass reads anything: a commit from now on wakes the next sleep.
        wake.begin_pass()
        now = services.clock.now()
        delay = cap
        try:
            book = await load_rule_book(services)
            report = await scheduler_pass(services, now, bus, book=book)
            if report.more and report.changed_anything():
                # A full batch that got done: there may be more due right now.
                await asyncio.sleep(0)
                continue
            due = await next_due_at(services, now, book=book)
            delay = seconds_until(due, services.clock.now(), cap)
            if report.errors:
                delay = min(delay, RETRY_AFTER_ERROR_S)
        except Exception:
            delay = min(cap, RETRY_AFTER_ERROR_S)
            logger.exception("scheduler pass failed; retrying in %s s", delay)
        await wake.sleep(delay)
        await asyncio.sleep(max(0.0, started + min(MIN_PASS_GAP_S, cap) - timer.time()))
