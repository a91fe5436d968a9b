"""A kiosk's day: the same data as ``GET /api/kiosk/schedule``, for the kiosk's socket."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Account, Facility, Kiosk, Person, Visit
from vvserver.domain.availability_store import local_midnight
from vvserver.domain.errors import NotFound
from vvserver.signaling.kiosk_pin import pin_required_for
from vvserver.signaling.protocol import ScheduledVisitOut, ScheduleMessage

logger = logging.getLogger(__name__)


async def kiosk_schedule(session: AsyncSession, kiosk_id: int, now: datetime) -> ScheduleMessage:
    """Today's active visits at this kiosk (facility-local day), visitor first names only."""
    kiosk = (
        await session.execute(
            select(Kiosk.id, Kiosk.name, Facility.timezone)
            .join(Facility, Facility.id == Kiosk.facility_id)
            .where(Kiosk.id == kiosk_id)
        )
    ).first()
    if kiosk is None:
        raise NotFound("no such kiosk")
    tz = ZoneInfo(kiosk.timezone)
    today = now.astimezone(tz).date()
    rows = (
        await session.execute(
            select(Visit, Person.first_name, Person.last_name, Account.name)
            .join(Person, Person.id == Visit.person_id)
            .join(Account, Account.id == Visit.visitor_id)
            .where(
                Visit.kiosk_id == kiosk.id,
                Visit.state.in_(ACTIVE_VISIT_STATES),
                Visit.start_at >= local_midnight(today, tz),
                Visit.start_at < local_midnight(today + timedelta(days=1), tz),
            )
            .order_by(Visit.start_at, Visit.id)
        )
    ).all()
    pin_required = {visit.id: await pin_required_for(session, visit) for visit, *_ in rows}
    return ScheduleMessage(
        kiosk_id=kiosk.id,
        kiosk_name=kiosk.name,
        date=today,
        timezone=kiosk.timezone,
        server_time=now,
        visits=[
            ScheduledVisitOut(
                id=visit.id,
                state=visit.state,
                start=visit.start_at.astimezone(tz),
                end=visit.end_at.astimezone(tz),
                start_utc=visit.start_at,
                end_utc=visit.end_at,
                person_name=f"{first} {last}",
                visitor_first_name=(visitor_name.split() or ["-"])[0],
                minors_count=len(visit.minors),
                privileged=visit.privileged,
                pin_required=pin_required[visit.id],
            )
            for visit, first, last, visitor_name in rows
        ],
    )
