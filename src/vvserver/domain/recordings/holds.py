"""Legal holds on a visit's recordings: placed and lifted by facility administrators, audited.

A hold sets ``recordings.legal_hold`` on every recording of the visit that is not purged (and on
any recording the visit's room opens later, see ``visits_live.recording_rows``); the retention
purge (``scheduling.recordings``) skips held recordings, so they survive their purge date. The
hold itself is a ``RecordingHold`` row (who, when, why); lifting it keeps the row as history.

Lifting never deletes anything: it clears the flag and moves a purge date that already passed
to ``VV_HOLD_RELEASE_GRACE_DAYS`` from now, so the purge job deletes it on its normal schedule,
not the moment the hold is lifted (and a hold lifted by mistake can be placed again).

Privileged (attorney, clergy) visits are never recorded: a hold on one is refused with 409
``privileged_not_recorded`` and the attempt is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Facility, Recording, RecordingHold, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import Conflict, NotFound
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HoldView:
    id: int
    visit_id: int
    reason: str
    placed_by: str  # the administrator's name
    placed_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


async def _visit_in_scope(session: AsyncSession, principal: Principal, visit_id: int) -> Visit:
    visit = await session.get(Visit, visit_id, with_for_update=True)
    facility = None if visit is None else await session.get(Facility, visit.facility_id)
    if visit is None or facility is None or not principal.is_staff:
        raise NotFound("no such visit")
    principal.ensure_admin_of(facility.id, facility.agency_id)
    return visit


async def _names(session: AsyncSession, *ids: int | None) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(select(Account.id, Account.name).where(Account.id.in_(wanted)))
    return {account_id: name for account_id, name in rows.all()}


async def _view(session: AsyncSession, hold: RecordingHold) -> HoldView:
    names = await _names(session, hold.placed_by, hold.lifted_by)
    return HoldView(
        id=hold.id,
        visit_id=hold.visit_id,
        reason=hold.reason,
        placed_by=names.get(hold.placed_by, f"account {hold.placed_by}"),
        placed_at=hold.placed_at,
        lifted_by=None if hold.lifted_by is None else names.get(hold.lifted_by),
        lifted_at=hold.lifted_at,
        lift_reason=hold.lift_reason,
    )


async def _recordings(session: AsyncSession, visit_id: int) -> list[Recording]:
    return list(
        await session.scalars(
            select(Recording)
            .where(Recording.visit_id == visit_id)
            .order_by(Recording.id)
            .with_for_update()
        )
    )


async def _refuse(
    services: Services, caller: Caller, action: str, visit_id: int, error: Conflict
) -> None:
    """Audit a refused hold change (in its own transaction), then raise ``error``."""
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                action, outcome="failure", target=f"visit:{visit_id}", details={"code": error.code}
            ),
            services.clock.now(),
        )
    raise error


async def place_hold(services: Services, caller: Caller, visit_id: int, reason: str) -> HoldView:
    """Hold the visit's recordings (audited ``recording.hold``)."""
    now = services.clock.now()
    refusal: Conflict | None = None
    try:
        async with services.write() as session:
            visit = await _visit_in_scope(session, caller.principal, visit_id)
            recordings = await _recordings(session, visit.id)
            kept = [r for r in recordings if r.purged_at is None]
            if visit.privileged:
                refusal = Conflict(
                    "privileged visits are never recorded: there is nothing to hold",
                    code="privileged_not_recorded",
                )
            elif not kept:
                refusal = (
                    Conflict("the recording was already purged", code="recording_purged")
                    if recordings
                    else Conflict("this visit has no recording", code="no_recording")
                )
            elif await _active(session, visit.id) is not None:
                refusal = Conflict("this visit's recording is on hold already", code="hold_exists")
            if refusal is not None:
                raise refusal
            hold = RecordingHold(
                visit_id=visit.id,
                facility_id=visit.facility_id,
                reason=reason,
                placed_by=caller.principal.require_account_id(),
                placed_at=now,
            )
            session.add(hold)
            for recording in kept:
                recording.legal_hold = True
            await session.flush()
            await caller.audit(
                services,
                session,
                "recording.hold",
                f"visit:{visit.id}",
                now,
                reason=reason,
                hold_id=hold.id,
                recordings=[r.id for r in kept],
            )
            view = await _view(session, hold)
    except IntegrityError as exc:  # a hold placed at the same moment (the unique index)
        refusal = Conflict("this visit's recording is on hold already", code="hold_exists")
        raise refusal from exc
    except Conflict as exc:
        if exc is refusal:
            await _refuse(services, caller, "recording.hold", visit_id, exc)
        raise
    logger.info("visit %s: recordings on legal hold (%s)", visit_id, caller.actor)
    return view


async def lift_hold(services: Services, caller: Caller, visit_id: int, reason: str) -> HoldView:
    """Lift the visit's hold (audited ``recording.hold_lift``); nothing is deleted now."""
    now = services.clock.now()
    grace = timedelta(days=services.settings.hold_release_grace_days)
    async with services.write() as session:
        visit = await _visit_in_scope(session, caller.principal, visit_id)
        hold = await _active(session, visit.id, lock=True)
        if hold is None:
            raise Conflict("this visit's recording is not on hold", code="no_hold")
        hold.lifted_by = caller.principal.require_account_id()
        hold.lifted_at = now
        hold.lift_reason = reason
        delayed = []
        for recording in await _recordings(session, visit.id):
            recording.legal_hold = False
            if recording.purge_after is not None and recording.purge_after < now + grace:
                recording.purge_after = now + grace
                delayed.append(recording.id)
        await caller.audit(
            services,
            session,
            "recording.hold_lift",
            f"visit:{visit.id}",
            now,
            reason=reason,
            hold_id=hold.id,
            purge_delayed=delayed,
        )
        view = await _view(session, hold)
    logger.info("visit %s: legal hold lifted (%s)", visit_id, caller.actor)
    return view


async def _active(
    session: AsyncSession, visit_id: int, *, lock: bool = False
) -> RecordingHold | None:
    query = select(RecordingHold).where(
        RecordingHold.visit_id == visit_id, RecordingHold.lifted_at.is_(None)
    )
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def hold_history(session: AsyncSession, visit_id: int) -> list[HoldView]:
    """Every hold of the visit, newest first (for playback and the evidence export; the caller
    has checked the visit is in scope)."""
    holds = await session.scalars(
        select(RecordingHold)
        .where(RecordingHold.visit_id == visit_id)
        .order_by(RecordingHold.placed_at.desc(), RecordingHold.id.desc())
    )
    return [await _view(session, hold) for hold in holds]


async def visit_holds(services: Services, principal: Principal, visit_id: int) -> list[HoldView]:
    """The visit's holds for staff in scope (officers too: they see, admins change)."""
    async with services.read() as session:
        visit = await session.get(Visit, visit_id)
        facility = None if visit is None else await session.get(Facility, visit.facility_id)
        if visit is None or facility is None or not principal.is_staff:
            raise NotFound("no such visit")
        principal.ensure_facility(facility.id, facility.agency_id)
        return await hold_history(session, visit.id)
