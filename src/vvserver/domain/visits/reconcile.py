"""Start-up reconciliation: repair what a crash left half-done, before the workers start.

* Visits left ``live``: the media sessions are gone. Past their end they become ``failed``
  ("server interrupted", credited); otherwise they go back to ``ready`` so both sides can rejoin,
  and ``start_pushed_at`` is cleared so the scheduler tells the kiosk again.
* The downtime of every call that was open (``ledger_at`` set, see ``call_downtime``) is
  counted as lost time of the sides that were in it: up to now, or up to the end of a visit
  that is over.
* Recordings left ``recording`` become ``interrupted`` (finished_at = now); the media layer
  remuxes their packet logs later.

Assumes one server process owns the database (it runs before this process serves anything);
in a cluster the caller names the calls and recordings that live nodes still hold, which are
left alone (``leave_visits``, ``leave_recordings``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from vvserver.db.models import Recording, Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.booking.credit import credit_ended_visit
from vvserver.domain.services import Services
from vvserver.domain.visits.call_downtime import count_downtime
from vvserver.domain.visits.states import transition

logger = logging.getLogger(__name__)

ACTOR = "system:startup"
BATCH_SIZE = 500
NOT_STARTED = ("scheduled", "ready")


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    visits_failed: int = 0
    visits_resumed: int = 0
    recordings_interrupted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.visits_failed or self.visits_resumed or self.recordings_interrupted)


async def _reconcile_live_visits(
    services: Services, now: datetime, leave: Collection[int]
) -> tuple[int, int]:
    failed = resumed = 0
    last_id = 0
    while True:
        async with services.write() as session:
            visits = (
                await session.scalars(
                    select(Visit)
                    .where(
                        or_(
                            Visit.state == "live",
                            and_(Visit.ledger_at.is_not(None), Visit.state.in_(NOT_STARTED)),
                        ),
                        Visit.id > last_id,
                    )
                    .order_by(Visit.id)
                    .limit(BATCH_SIZE)
                    .with_for_update()
                )
            ).all()
            for visit in visits:
                last_id = visit.id
                if visit.id in leave:
                    continue  # its call runs on a live node
                count_downtime(visit, min(now, visit.end_at), keep_open=visit.end_at > now)
                if visit.state != "live":
                    continue  # stopped before its end and back in ready: downtime only
                if visit.end_at <= now:
                    transition(
                        session, visit, "failed", actor=ACTOR, reason="server interrupted", now=now
                    )
                    await credit_ended_visit(session, services, visit, now)
                    failed += 1
                else:
                    transition(
                        session, visit, "ready", actor=ACTOR, reason="server restarted", now=now
                    )
                    visit.start_pushed_at = None
                    resumed += 1
        if len(visits) < BATCH_SIZE:
            return failed, resumed


async def _reconcile_recordings(services: Services, now: datetime, leave: Collection[int]) -> int:
    count = 0
    last_id = 0
    while True:
        async with services.write() as session:
            recordings = (
                await session.scalars(
                    select(Recording)
                    .where(Recording.state == "recording", Recording.id > last_id)
                    .order_by(Recording.id)
                    .limit(BATCH_SIZE)
                    .with_for_update()
                )
            ).all()
            for recording in recordings:
                last_id = recording.id
                if recording.id in leave:
                    continue  # a live node records into it
                count += 1
                recording.state = "interrupted"
                recording.finished_at = recording.finished_at or now
        if len(recordings) < BATCH_SIZE:
            return count


async def reconcile_at_startup(
    services: Services,
    now: datetime | None = None,
    *,
    leave_visits: Collection[int] = (),
    leave_recordings: Collection[int] = (),
) -> ReconcileReport:
    """Repair visits and recordings a crash left in flight; audit what was changed."""
    now = now or services.clock.now()
    failed, resumed = await _reconcile_live_visits(services, now, leave_visits)
    interrupted = await _reconcile_recordings(services, now, leave_recordings)
    report = ReconcileReport(failed, resumed, interrupted)
    if report.changed:
        logger.warning(
            "start-up reconciliation: %s live visits failed, %s back to ready, "
            "%s recordings interrupted",
            failed,
            resumed,
            interrupted,
        )
        await services.audit_now(
            AuditRecord(
                actor=ACTOR,
                action="system.reconcile",
                outcome="success",
                component="scheduler",
                details={
                    "visits_failed": failed,
                    "visits_resumed": resumed,
                    "recordings_interrupted": interrupted,
                },
            )
        )
    return report
