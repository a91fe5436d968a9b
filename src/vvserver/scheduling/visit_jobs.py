"""Timed visit state changes: join window, kiosk start push, no-shows and overruns.

Every job finds candidates with an indexed, bounded query (``ix_visits_state_start``), then
changes each visit in its own write transaction with the row locked, re-checking the condition
there. The state or marker column written in that transaction is what makes the job run once:
after a restart the same query no longer finds the visit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Kiosk, Visit, VisitTransition
from vvserver.domain.booking.credit import credit_ended_visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitEvents, VisitStartEvent
from vvserver.domain.visits.call_downtime import count_downtime
from vvserver.domain.visits.states import transition
from vvserver.scheduling.base import ACTOR, BATCH_SIZE, SchedulerReport, each_locked_visit
from vvserver.scheduling.rulebook import RuleBook, UnitGroup

logger = logging.getLogger(__name__)

# The media layer ends live visits at end_at; the scheduler steps in after this grace.
OVERRUN_GRACE = timedelta(seconds=30)
# A kiosk not seen since this long before the start counts as offline (the facility's fault).
KIOSK_SEEN_BEFORE_START = timedelta(minutes=2)
NOT_STARTED = ("scheduled", "ready")
STARTABLE = ("ready", "live")  # live: both sides were waiting when the slot started


def _in_group(query: Select[int], group: UnitGroup) -> Select[int]:
    if group.unit_ids is None:
        return query
    return query.where(Visit.unit_id.in_(group.unit_ids))


async def _candidate_ids(
    services: Services, query: Select[int], report: SchedulerReport
) -> list[int]:
    async with services.read() as session:
        ids = list((await session.scalars(query.order_by(Visit.start_at).limit(BATCH_SIZE))).all())
    report.note_batch(ids)
    return ids


async def open_join_windows(
    services: Services, book: RuleBook, now: datetime, report: SchedulerReport
) -> None:
    """scheduled -> ready once ``start - join_window_minutes <= now``."""
    for group in book.groups(lambda r: r.join_window_minutes):
        horizon = now + timedelta(minutes=group.value)
        query = select(Visit.id).where(Visit.state == "scheduled", Visit.start_at <= horizon)
        ids = await _candidate_ids(services, _in_group(query, group), report)

        async def open_one(session: AsyncSession, visit: Visit) -> int | None:
            window = timedelta(minutes=book.for_unit(visit.unit_id).join_window_minutes)
            if visit.state != "scheduled" or visit.start_at - window > now:
                return None
            transition(session, visit, "ready", actor=ACTOR, reason="join window open", now=now)
            return visit.id

        opened = await each_locked_visit(
            services, ids, job="join_window", report=report, apply=open_one
        )
        report.opened += len(opened)


async def push_starts(
    services: Services, now: datetime, events: VisitEvents, report: SchedulerReport
) -> None:
    """Ready visits whose start has come: mark ``start_pushed_at`` and tell the kiosk.

    A visit whose sides were both waiting in the call goes ``live`` at the slot's start by
    itself (the media room's clock); it is told too (its visitor gets the started status).
    """
    query = select(Visit.id).where(
        Visit.state.in_(STARTABLE), Visit.start_at <= now, Visit.start_pushed_at.is_(None)
    )
    ids = await _candidate_ids(services, query, report)

    async def push_one(_session: AsyncSession, visit: Visit) -> VisitStartEvent | None:
        if (
            visit.state not in STARTABLE
            or visit.start_pushed_at is not None
            or visit.start_at > now
        ):
            return None
        if visit.end_at <= now:
            return None  # nothing to start any more; the ending job closes it
        visit.start_pushed_at = now
        visit.updated_at = now
        return VisitStartEvent(
            visit_id=visit.id,
            facility_id=visit.facility_id,
            unit_id=visit.unit_id,
            kiosk_id=visit.kiosk_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
        )

    pushed = await each_locked_visit(services, ids, job="start_push", report=report, apply=push_one)
    # Published only after each marker committed: an event never announces a rolled-back change.
    for event in pushed:
        events.publish(event)
    report.start_pushes += len(pushed)


def missing_side(visit: Visit) -> str | None:
    visitor_missing = visit.visitor_joined_at is None
    kiosk_missing = visit.kiosk_joined_at is None
    if visitor_missing and kiosk_missing:
        return "both"
    if visitor_missing:
        return "visitor"
    if kiosk_missing:
        return "kiosk"
    return None


async def _was_live(session: AsyncSession, visit: Visit) -> bool:
    found = await session.scalar(
        select(VisitTransition.id)
        .where(
            VisitTransition.visit_id == visit.id,
            or_(VisitTransition.to_state == "live", VisitTransition.from_state == "live"),
        )
        .limit(1)
    )
    return found is not None


async def _kiosk_offline(session: AsyncSession, visit: Visit) -> bool:
    kiosk = await session.get(Kiosk, visit.kiosk_id)
    if kiosk is None or kiosk.last_seen_at is None:
        return True
    return kiosk.last_seen_at < visit.start_at - KIOSK_SEEN_BEFORE_START


async def end_unattended(
    services: Services, book: RuleBook, now: datetime, report: SchedulerReport
) -> None:
    """Visits never started by ``start + no_show_minutes`` end as no_show or failed."""
    for group in book.groups(lambda r: r.no_show_minutes):
        deadline = now - timedelta(minutes=group.value)
        query = select(Visit.id).where(Visit.state.in_(NOT_STARTED), Visit.start_at <= deadline)
        ids = await _candidate_ids(services, _in_group(query, group), report)

        async def end_one(session: AsyncSession, visit: Visit) -> str | None:
            wait = timedelta(minutes=book.for_unit(visit.unit_id).no_show_minutes)
            if visit.state not in NOT_STARTED or visit.start_at + wait > now:
                return None
            if await _was_live(session, visit):
                # Back in ready after a disconnect or restart: rejoin is possible until the end.
                if visit.end_at + OVERRUN_GRACE > now:
                    return None
                count_downtime(visit, min(now, visit.end_at), keep_open=False)
                transition(
                    session,
                    visit,
                    "failed",
                    actor=ACTOR,
                    reason="interrupted, not resumed",
                    now=now,
                )
                await credit_ended_visit(session, services, visit, now)
                return "failed_other"
            side = missing_side(visit)
            visit.missing_side = side
            if side is None:
                reason = "both joined but never connected together"
                transition(session, visit, "failed", actor=ACTOR, reason=reason, now=now)
                await credit_ended_visit(session, services, visit, now)
                return "failed_other"
            if visit.kiosk_joined_at is None and await _kiosk_offline(session, visit):
                transition(session, visit, "failed", actor=ACTOR, reason="kiosk offline", now=now)
                await credit_ended_visit(session, services, visit, now)
                return "kiosk_offline"
            reason = f"no-show: {'visitor and kiosk' if side == 'both' else side} did not join"
            transition(session, visit, "no_show", actor=ACTOR, reason=reason, now=now)
            return "no_show"

        outcomes = await each_locked_visit(
            services, ids, job="no_show", report=report, apply=end_one
        )
        report.no_shows += outcomes.count("no_show")
        report.kiosk_offline += outcomes.count("kiosk_offline")
        report.failed_other += outcomes.count("failed_other")


async def complete_overruns(services: Services, now: datetime, report: SchedulerReport) -> None:
    """Live visits past ``end_at`` + grace that the media layer did not end."""
    query = select(Visit.id).where(Visit.state == "live", Visit.end_at <= now - OVERRUN_GRACE)
    ids = await _candidate_ids(services, query, report)

    async def complete_one(session: AsyncSession, visit: Visit) -> int | None:
        if visit.state != "live" or visit.end_at + OVERRUN_GRACE > now:
            return None
        logger.warning(
            "visit %s still live %s after its end; completing it", visit.id, now - visit.end_at
        )
        transition(
            session, visit, "completed", actor=ACTOR, reason="time over (scheduler)", now=now
        )
        await credit_ended_visit(session, services, visit, now)
        return visit.id

    done = await each_locked_visit(services, ids, job="overrun", report=report, apply=complete_one)
    report.overruns_completed += len(done)
