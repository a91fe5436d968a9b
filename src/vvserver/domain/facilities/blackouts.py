"""Blackouts: periods without visits; creating one cancels the visits it covers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from vvserver.db.models import (
    Blackout,
    Visit,
)
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    cancel_visits,
    facility_in_scope,
    unit_of,
)
from vvserver.domain.errors import InvalidInput, NotFound
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


logger = logging.getLogger(__name__)

MAX_BLACKOUT = timedelta(days=366)

# --------------------------------------------------------------------------- blackouts


async def create_blackout(
    services: Services,
    caller: Caller,
    facility_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    unit_id: int | None,
) -> tuple[Blackout, int]:
    """Close the facility (or one unit) for a time; covered active visits are cancelled."""
    now = services.clock.now()
    if ends_at <= starts_at:
        raise InvalidInput("a blackout must end after it starts", code="invalid_period")
    if ends_at <= now:
        raise InvalidInput("this blackout is already over", code="invalid_period")
    if ends_at - starts_at > MAX_BLACKOUT:
        raise InvalidInput("a blackout may last at most 366 days", code="invalid_period")
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        if unit_id is not None:
            await unit_of(session, facility, unit_id)
        blackout = Blackout(
            facility_id=facility.id,
            unit_id=unit_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=caller.principal.require_account_id(),
            created_at=now,
        )
        session.add(blackout)
        await session.flush()
        covered = [
            Visit.facility_id == facility.id,
            Visit.start_at < ends_at,
            Visit.end_at > starts_at,
        ]
        if unit_id is not None:
            covered.append(Visit.unit_id == unit_id)
        cancelled = await cancel_visits(
            session, *covered, actor=caller.actor, reason=reason, now=now
        )
        await caller.audit(
            services,
            session,
            "blackout.create",
            f"blackout:{blackout.id}",
            now,
            unit_id=unit_id,
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
            cancelled_visits=cancelled,
        )
    return blackout, len(cancelled)


async def list_blackouts(
    services: Services, principal: Principal, facility_id: int, *, include_past: bool
) -> list[Blackout]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        query = select(Blackout).where(Blackout.facility_id == facility.id)
        if not include_past:
            query = query.where(Blackout.ends_at > services.clock.now())
        rows = await session.scalars(query.order_by(Blackout.starts_at, Blackout.id).limit(500))
        return list(rows.all())


async def delete_blackout(services: Services, caller: Caller, blackout_id: int) -> None:
    """Reopen the period. Visits it cancelled stay cancelled (visitors book again)."""
    now = services.clock.now()
    async with services.write() as session:
        blackout = await session.get(Blackout, blackout_id, with_for_update=True)
        if blackout is None:
            raise NotFound("no such blackout")
        await administered_facility(session, caller.principal, blackout.facility_id)
        await session.delete(blackout)
        await caller.audit(services, session, "blackout.delete", f"blackout:{blackout_id}", now)
