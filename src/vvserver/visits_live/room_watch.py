"""One open room's events turned into database changes, in a task the service owns.

* `ParticipantStateChanged` and `MediaFlowChanged`: the call ledger (connected and lost
  seconds per side, written to the visit row at once and every second by `ledger_store`);
  the visit goes `live` when both sides are connected and the slot has started. A participant
  dropping does not end the visit: it stays `live` and the lost time accrues until its media
  returns or the visit ends.
* `SlotStarted`: the waiting room is over. Nothing was counted before (the ledger counts from
  the slot's start); a visit whose sides are both connected already goes `live` now.
* `MediaNotConnected`: a side whose media could not connect in time: audited
  (`visit.media_not_connected`) and raised to staff as the alert `visitor_cannot_connect` or
  `kiosk_cannot_connect` (the visit event bus carries it to every node's officers).
* `VisitEnded`: the visit's end state (by the end reason), the last accounting, credit and
  the audit of monitors still watching, committed at once; then, once the room has remuxed
  it, the `Recording` row and recording failures.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Recording, Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.booking.credit import credit_ended_visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import StaffAlertEvent, publish_after_commit
from vvserver.domain.visits.states import transition
from vvserver.media.room_events import (
    MediaFlowChanged,
    MediaNotConnected,
    MonitorDropped,
    ParticipantStateChanged,
    Role,
    SlotStarted,
    VisitEnded,
)
from vvserver.visits_live.handoff import DRAIN_REASON
from vvserver.visits_live.ledger import CallLedger
from vvserver.visits_live.ledger_store import add_time, record_checkpoint
from vvserver.visits_live.live_visit import load_live_visit
from vvserver.visits_live.recording_rows import (
    ACTOR,
    audit_recording_failures,
    finish_recording_row,
    recording_files,
)

if TYPE_CHECKING:
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)

NOT_STARTED = ("scheduled", "ready")
ROLES: tuple[Role, ...] = get_args(Role)


async def audit_monitor(
    services: Services,
    session: AsyncSession,
    *,
    actor: str,
    visit_id: int,
    started: bool,
    outcome: str,
    now: datetime,
    request_id: str | None = None,
    **details: object,
) -> None:
    """`visit.monitor.start` / `visit.monitor.stop`, inside the caller's write transaction."""
    await services.audit.append(
        session,
        AuditRecord(
            actor=actor,
            action="visit.monitor.start" if started else "visit.monitor.stop",
            outcome=outcome,
            target=f"visit:{visit_id}",
            request_id=request_id,
            component="media",
            details=dict(details),
        ),
        now,
    )


class RoomWatch:
    """Subscribes to `room` at once (no event is missed); `run()` consumes until the end.

    `resume_from`: the visit row of a call a server stop interrupted (`ledger_at` set): the
    sides that were in it lose time from then until their media returns. `lost_since`: a call
    handed off by a draining node: both sides lose time from then until their media returns.
    `counts_from`: the slot's start; nothing is connected or lost time before it.
    """

    def __init__(
        self,
        services: Services,
        room: VisitRoom,
        *,
        recording_id: int | None,
        ledger_lock: asyncio.Lock,
        resume_from: Visit | None = None,
        lost_since: datetime | None = None,
        counts_from: datetime | None = None,
    ) -> None:
        self.services = services
        self.room = room
        self.visit_id = room.visit_id
        self.recording_id = recording_id
        self.ledger = CallLedger(counts_from)
        self.ending = False  # the end is being written: no more periodic ledger writes
        self._ledger_lock = ledger_lock
        if resume_from is not None and resume_from.ledger_at is not None:
            in_call = {"visitor": resume_from.visitor_in_call, "kiosk": resume_from.kiosk_in_call}
            for role in ROLES:
                if in_call[role]:
                    self.ledger.resume_after_restart(role, resume_from.ledger_at)
        elif lost_since is not None:
            for role in ROLES:
                self.ledger.resume_after_restart(role, lost_since)
        # Monitors (principal actors) whose start was audited and whose stop is not yet.
        self.monitors: set[str] = set()
        self.went_live = False
        self.recording_finished = False
        self.recording_failures: list[str] = []
        self._events = room.events()

    async def run(self) -> None:
        async for event in self._events:
            try:
                if isinstance(event, ParticipantStateChanged):
                    await self._participant_changed(event)
                elif isinstance(event, MediaFlowChanged):
                    await self._media_changed(event)
                elif isinstance(event, SlotStarted):
                    await self._slot_started(event)
                elif isinstance(event, VisitEnded):
                    await self._ended(event)
                elif isinstance(event, MonitorDropped):
                    await self._monitor_dropped(event)
                elif isinstance(event, MediaNotConnected):
                    await self._not_connected(event)
            except Exception:
                # The store may be briefly unavailable; the next event (or start-up
                # reconciliation, for the end) puts things right.
                logger.exception("visit %s: handling %s failed", self.visit_id, event)

    async def _participant_changed(self, event: ParticipantStateChanged) -> None:
        if event.state not in ("connected", "disconnected"):
            return  # "joined": join() records the first join itself
        async with self._ledger_lock:
            now = self.services.clock.now()
            if event.state == "connected":
                self.ledger.connected(event.role, now)
            else:
                self.ledger.disconnected(event.role, now)
            async with self.services.write() as session:
                visit = (await load_live_visit(session, self.visit_id, lock=True)).visit
                record_checkpoint(visit, self.ledger, now)
                self._go_live_if_ready(session, visit, now, "both sides connected")
        logger.info("visit %s: %s %s", self.visit_id, event.role, event.state)

    async def _slot_started(self, event: SlotStarted) -> None:
        """The waiting room is over: the call is on if both sides are in it already."""
        async with self._ledger_lock:
            now = self.services.clock.now()
            async with self.services.write() as session:
                visit = (await load_live_visit(session, self.visit_id, lock=True)).visit
                record_checkpoint(visit, self.ledger, now)
                self._go_live_if_ready(session, visit, now, "slot started, both sides connected")
        logger.info("visit %s: slot started at %s", self.visit_id, event.at.isoformat())

    def _go_live_if_ready(
        self, session: AsyncSession, visit: Visit, now: datetime, reason: str
    ) -> None:
        """`live` once both sides are connected and the slot has started (never before)."""
        if (
            self.ledger.both_connected
            and visit.state in NOT_STARTED
            and now >= visit.start_at
            and self.room.gate.is_open
        ):
            transition(session, visit, "live", actor=ACTOR, reason=reason, now=now)
            self.went_live = True

    async def _monitor_dropped(self, event: MonitorDropped) -> None:
        """A monitor's connection closed by itself: audit its stop (once)."""
        if event.monitor_id not in self.monitors:
            return
        self.monitors.discard(event.monitor_id)
        async with self.services.write() as session:
            await audit_monitor(
                self.services,
                session,
                actor=event.monitor_id,
                visit_id=self.visit_id,
                started=False,
                outcome="success",
                now=self.services.clock.now(),
                reason="connection closed",
            )

    async def _not_connected(self, event: MediaNotConnected) -> None:
        """A side's media could not connect: audit it, and alert the facility's staff."""
        side = "visitor" if event.role == "visitor" else "kiosk"
        message = (
            f"the {side}'s media has not connected {event.waited_s:.0f} s after joining "
            "(its network may block the call)"
        )
        async with self.services.write() as session:
            visit = (await load_live_visit(session, self.visit_id)).visit
            now = self.services.clock.now()
            await self.services.audit.append(
                session,
                AuditRecord(
                    actor=ACTOR,
                    action="visit.media_not_connected",
                    outcome="failure",
                    target=f"visit:{self.visit_id}",
                    component="media",
                    details={"role": event.role, "waited_s": event.waited_s},
                ),
                now,
            )
            publish_after_commit(
                session,
                StaffAlertEvent(
                    code=f"{event.role}_cannot_connect",
                    visit_id=self.visit_id,
                    kiosk_id=visit.kiosk_id,
                    facility_id=visit.facility_id,
                    message=message,
                    at=now,
                ),
            )
        logger.warning("visit %s: %s", self.visit_id, message)

    async def _media_changed(self, event: MediaFlowChanged) -> None:
        async with self._ledger_lock:
            self.ledger.media(event.role, event.flowing, event.at)
            now = self.services.clock.now()
            async with self.services.write() as session:
                visit = (await load_live_visit(session, self.visit_id, lock=True)).visit
                record_checkpoint(visit, self.ledger, now)

    async def _ended(self, event: VisitEnded) -> None:
        """The end state at once; the recording row once the room has remuxed it."""
        self.ending = True
        try:
            await self._write_end(event)
        finally:
            if self.recording_id is not None:
                await self._finish_recording()

    async def _write_end(self, event: VisitEnded) -> None:
        async with self._ledger_lock:
            now = self.services.clock.now()
            async with self.services.write() as session:
                visit = (await load_live_visit(session, self.visit_id, lock=True)).visit
                until = min(now, visit.end_at) if event.reason == "time_up" else now
                in_call = {role: self.ledger.in_call(role) for role in ROLES}
                add_time(visit, self.ledger.finish(until))
                visit.updated_at = now
                was_active = visit.state in ACTIVE_VISIT_STATES
                self._settle_state(session, visit, event, now)
                # A call stopped before its end (server shutdown) stays open in the row: its
                # sides lose the time until their media reaches a server again.
                resumable = visit.state in ACTIVE_VISIT_STATES and any(in_call.values())
                visit.visitor_in_call = resumable and in_call["visitor"]
                visit.kiosk_in_call = resumable and in_call["kiosk"]
                visit.ledger_at = until if resumable else None
                if was_active and visit.state not in ACTIVE_VISIT_STATES:
                    # Ended here, with its last time accounting: failed or too much lost time.
                    await credit_ended_visit(session, self.services, visit, now)
                for monitor in sorted(self.monitors):
                    await audit_monitor(
                        self.services,
                        session,
                        actor=monitor,
                        visit_id=self.visit_id,
                        started=False,
                        outcome="success",
                        now=now,
                        reason="visit ended",
                    )
                self.monitors.clear()
        logger.info("visit %s: room ended (%s), visit %s", self.visit_id, event.reason, visit.state)

    def _settle_state(
        self, session: AsyncSession, visit: Visit, event: VisitEnded, now: datetime
    ) -> None:
        if visit.state not in ACTIVE_VISIT_STATES:
            return  # terminate() (or someone else) already decided
        if event.reason == "time_up" or (
            event.reason in ("closed", "draining") and now >= visit.end_at
        ):
            if visit.state == "live":
                transition(session, visit, "completed", actor=ACTOR, reason="time over", now=now)
            else:
                # Never live: who was missing (no-show, kiosk offline) is the scheduler's call.
                logger.info("visit %s ended without going live", visit.id)
        elif event.reason == "terminated":
            reason = event.message or "ended by the facility"
            transition(
                session,
                visit,
                "terminated",
                actor=ACTOR,
                reason=reason,
                now=now,
                counts_toward_limit=True,
            )
        elif event.reason == "failed":
            reason = f"media failure: {event.message}" if event.message else "media failure"
            transition(session, visit, "failed", actor=ACTOR, reason=reason, now=now)
        elif visit.state == "live":
            # The server is stopping before the end: resumable, as start-up repair does. A
            # drain's hand-off says so: the next room counts the gap as lost (handoff.py).
            reason = DRAIN_REASON if event.reason == "draining" else "media server stopped"
            transition(session, visit, "ready", actor=ACTOR, reason=reason, now=now)
            visit.start_pushed_at = None

    async def _finish_recording(self) -> None:
        await self.room.recording_finished()  # the remux, after the end was told and written
        files: list[dict[str, Any]] | None = None
        if self.room.recording is not None:
            files = await asyncio.to_thread(recording_files, self.room.recording)
        now = self.services.clock.now()
        async with self.services.write() as session:
            live = await load_live_visit(session, self.visit_id)
            recording = await session.get(Recording, self.recording_id, with_for_update=True)
            if recording is None:
                return
            self.recording_failures = list(self.room.recording_failures)
            if files is not None:
                finish_recording_row(recording, files, now, live.rules.retention_days)
                self.recording_finished = True
            else:
                # Logs stay on disk: the next start-up remuxes them and adopts this row.
                recording.state = "interrupted"
                recording.finished_at = now
                logger.error("visit %s: the recording could not be finalized", self.visit_id)
            if self.recording_failures:
                await audit_recording_failures(
                    self.services, session, recording, self.recording_failures, now
                )
