"""One scheduler pass (all jobs, in a fixed order) and the worker loop around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from vvserver.events import VisitEventBus, VisitEvents
from vvserver.scheduling.base import SchedulerReport
from vvserver.scheduling.recordings import purge_expired, set_purge_dates
from vvserver.scheduling.reminders import send_reminders
from vvserver.scheduling.rulebook import RuleBook
from vvserver.scheduling.visit_jobs import (
    complete_overruns,
    end_unattended,
    open_join_windows,
    push_starts,
)
from vvserver.services import Services

logger = logging.getLogger(__name__)


async def scheduler_pass(
    services: Services, now: datetime, events: VisitEvents | None = None
) -> SchedulerReport:
    """Run every timed job once for ``now``. A failing job is logged; the others still run.

    Order matters: visits past their deadlines end first, so a visit found late (after downtime)
    is closed rather than opened, reminded and pushed to the kiosk.
    """
    bus: VisitEvents = events if events is not None else VisitEventBus()
    report = SchedulerReport()
    async with services.read() as session:
        book = await RuleBook.load(session)
    jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("overruns", lambda: complete_overruns(services, now, report)),
        ("no_shows", lambda: end_unattended(services, book, now, report)),
        ("join_window", lambda: open_join_windows(services, book, now, report)),
        ("reminders", lambda: send_reminders(services, book, now, report)),
        ("start_push", lambda: push_starts(services, now, bus, report)),
        ("purge_dates", lambda: set_purge_dates(services, book, now, report)),
        ("purge", lambda: purge_expired(services, now, report)),
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


def event_bus_of(services: Services) -> VisitEventBus:
    """The app's visit event bus (``Services.events`` once it exists), else a private one."""
    bus = getattr(services, "events", None)
    return bus if isinstance(bus, VisitEventBus) else VisitEventBus()


async def run_scheduler(services: Services, *, events: VisitEvents | None = None) -> None:
    """Worker loop: a pass every ``scheduler_interval_s``; exits only when cancelled."""
    bus: VisitEvents = events if events is not None else event_bus_of(services)
    interval = services.settings.scheduler_interval_s
    while True:
        more = False
        try:
            report = await scheduler_pass(services, services.clock.now(), bus)
            # Only hurry on while work gets done, so rows that stay due cannot spin the loop.
            more = report.more and report.changed_anything()
        except Exception:
            logger.exception("scheduler pass failed; retrying in %s s", interval)
        await asyncio.sleep(0 if more else interval)
