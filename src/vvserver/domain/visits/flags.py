"""Flagging a moment of a visit: staff note something at a point of the call, for review.

A flag keeps the note and its offset (seconds) from the visit's start, clamped to the visit's
length, so a reviewer can jump to that moment of the recording. Staff may flag a visit in
their scope once its slot has started, while it runs and for ``FLAG_AFTER_END`` after its
end. Privileged (attorney) visits are never monitored, so they cannot be flagged either: that
refusal is audited like a refused monitor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Facility, Visit, VisitFlag
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import LiveListChangedEvent

logger = logging.getLogger(__name__)

MAX_NOTE_CHARS = 1000
FLAG_AFTER_END = timedelta(hours=1)
UNFLAGGABLE_STATES = frozenset({"cancelled"})


@dataclass(frozen=True, slots=True)
class FlagRequest:
    visit_id: int
    note: str
    request_id: str | None = None
    component: str = "api"


def flag_offset_s(visit: Visit, now: datetime) -> float:
    """Seconds from the visit's start to ``now``, within [0, the visit's length]."""
    length = (visit.end_at - visit.start_at).total_seconds()
    return min(max(0.0, (now - visit.start_at).total_seconds()), max(0.0, length))


async def _visit_in_scope(
    session: AsyncSession, principal: Principal, visit_id: int, *, lock: bool = False
) -> Visit:
    if not principal.is_staff:
        raise NotFound("no such visit")
    # Locked when flagging: a cancel or reschedule racing with it waits (PostgreSQL).
    visit = await session.get(Visit, visit_id, with_for_update=lock)
    if visit is None:
        raise NotFound("no such visit")
    facility = await session.get(Facility, visit.facility_id)
    if facility is None:
        raise NotFound("no such visit")
    principal.ensure_facility(facility.id, facility.agency_id)
    return visit


def _check_flaggable(visit: Visit, now: datetime) -> None:
    if visit.state in UNFLAGGABLE_STATES:
        raise Conflict("the visit was cancelled", code="visit_not_active")
    if now < visit.start_at:
        raise Conflict("the visit has not started yet", code="visit_not_started")
    if now > visit.end_at + FLAG_AFTER_END:
        raise Conflict("the visit ended too long ago to flag", code="flag_window_over")


async def flag_visit(services: Services, principal: Principal, request: FlagRequest) -> VisitFlag:
    """Store a flag at the current moment of the visit (audited ``visit.flag``)."""
    account_id = principal.require_account_id()
    note = request.note.strip()
    if not note or len(note) > MAX_NOTE_CHARS:
        raise InvalidInput("the note is 1 to 1000 characters", code="invalid_note")
    refused = False
    async with services.write() as session:
        visit = await _visit_in_scope(session, principal, request.visit_id, lock=True)
        now = services.clock.now()
        if visit.privileged:
            # Audited, then refused once the transaction has committed the audit entry.
            refused = True
            await services.audit.append(
                session, _record(principal, request, "failure", {"code": "privileged_visit"}), now
            )
        else:
            _check_flaggable(visit, now)
            flag = VisitFlag(
                visit_id=visit.id,
                facility_id=visit.facility_id,
                at=now,
                offset_s=flag_offset_s(visit, now),
                note=note,
                created_by=account_id,
            )
            session.add(flag)
            await session.flush()
            await services.audit.append(
                session,
                _record(
                    principal, request, "success", {"flag_id": flag.id, "offset_s": flag.offset_s}
                ),
                now,
            )
    if refused:
        logger.warning("%s refused: flag on privileged visit %s", principal.actor, request.visit_id)
        raise Forbidden("a privileged visit cannot be flagged", code="privileged_visit")
    logger.info("visit %s flagged by %s at %.1f s", flag.visit_id, principal.actor, flag.offset_s)
    services.events.publish(LiveListChangedEvent(flag.visit_id))  # the flag count shows live
    return flag


def _record(
    principal: Principal, request: FlagRequest, outcome: str, details: dict[str, object]
) -> AuditRecord:
    return AuditRecord(
        actor=principal.actor,
        action="visit.flag",
        outcome=outcome,
        target=f"visit:{request.visit_id}",
        request_id=request.request_id,
        component=request.component,
        details=details,
    )


async def list_flags(services: Services, principal: Principal, visit_id: int) -> list[VisitFlag]:
    """A visit's flags in the order of the call (staff in scope; 404 otherwise)."""
    async with services.read() as session:
        await _visit_in_scope(session, principal, visit_id)
        rows = await session.scalars(
            select(VisitFlag)
            .where(VisitFlag.visit_id == visit_id)
            .order_by(VisitFlag.offset_s, VisitFlag.id)
        )
        return list(rows)
