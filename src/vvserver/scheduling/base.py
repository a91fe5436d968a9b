"""What every scheduler job shares: the report, the actor name, one locked visit at a time."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Visit
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

ACTOR = "system:scheduler"
# Rows one job handles per pass; a full batch makes the loop run again without sleeping.
BATCH_SIZE = 200

T = TypeVar("T")


@dataclass
class SchedulerReport:
    """What one pass did (counts), for logs and tests."""

    opened: int = 0
    reminders_queued: int = 0
    reminders_skipped: int = 0
    start_pushes: int = 0
    no_shows: int = 0
    kiosk_offline: int = 0
    failed_other: int = 0
    overruns_completed: int = 0
    purge_after_set: int = 0
    recordings_purged: int = 0
    purges_refused: int = 0
    series_booked: int = 0
    series_skipped: int = 0
    series_ended: int = 0
    rings_missed: int = 0
    errors: int = 0
    # Some job filled its batch: there may be more due work right now.
    more: bool = False

    def note_batch(self, rows: Sequence[object]) -> None:
        if len(rows) >= BATCH_SIZE:
            self.more = True

    def changed_anything(self) -> bool:
        return any(
            (
                self.opened,
                self.reminders_queued,
                self.reminders_skipped,
                self.start_pushes,
                self.no_shows,
                self.kiosk_offline,
                self.failed_other,
                self.overruns_completed,
                self.purge_after_set,
                self.recordings_purged,
                self.purges_refused,
                self.series_booked,
                self.series_skipped,
                self.series_ended,
                self.rings_missed,
            )
        )


async def each_locked_visit(
    services: Services,
    visit_ids: Sequence[int],
    *,
    job: str,
    report: SchedulerReport,
    apply: Callable[[AsyncSession, Visit], Awaitable[T | None]],
) -> list[T]:
    """Run ``apply`` for each visit in its own short write transaction, with the row locked.

    ``apply`` must re-check the job's condition on the locked row (another writer may have moved
    the visit since the candidate query) and return None when there is nothing to do. A failure
    rolls back that visit only; it is logged and counted, and the next visit goes on.
    """
    results: list[T] = []
    for visit_id in visit_ids:
        try:
            async with services.write() as session:
                visit = await session.scalar(
                    select(Visit).where(Visit.id == visit_id).with_for_update(skip_locked=True)
                )
                result = None if visit is None else await apply(session, visit)
        except Exception:
            report.errors += 1
            logger.exception("scheduler job %s failed for visit %s", job, visit_id)
            continue
        if result is not None:
            results.append(result)
    return results
