"""A kiosk's day as a ``schedule`` message (the same data as ``GET /api/kiosk/schedule``)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.domain.visits.kiosk_day import load_kiosk_day
from vvserver.signaling.kiosk_pin import pin_required_for
from vvserver.signaling.protocol import ScheduledVisitOut, ScheduleMessage

logger = logging.getLogger(__name__)


async def kiosk_schedule(session: AsyncSession, kiosk_id: int, now: datetime) -> ScheduleMessage:
    """Today's active visits at this kiosk (facility-local day), visitor first names only."""
    day = await load_kiosk_day(session, kiosk_id, now)
    pin_required = {row.visit.id: await pin_required_for(session, row.visit) for row in day.visits}
    return ScheduleMessage(
        kiosk_id=day.kiosk_id,
        kiosk_name=day.kiosk_name,
        date=day.date,
        timezone=day.timezone,
        server_time=now,
        visits=[
            ScheduledVisitOut(
                id=row.visit.id,
                state=row.visit.state,
                start=row.visit.start_at.astimezone(day.tz),
                end=row.visit.end_at.astimezone(day.tz),
                start_utc=row.visit.start_at,
                end_utc=row.visit.end_at,
                person_name=row.person_name,
                visitor_first_name=row.visitor_first_name,
                minors_count=len(row.visit.minors),
                privileged=row.visit.privileged,
                pin_required=pin_required[row.visit.id],
            )
            for row in day.visits
        ],
    )
