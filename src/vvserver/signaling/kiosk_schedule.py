"""A kiosk's day as a ``schedule`` message (the same data as ``GET /api/kiosk/schedule``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.domain.visits.kiosk_day import load_kiosk_day
from vvserver.signaling.protocol import ScheduleMessage


async def kiosk_schedule(session: AsyncSession, kiosk_id: int, now: datetime) -> ScheduleMessage:
    """Today's active visits at this kiosk (facility-local day), visitor first names only."""
    day = await load_kiosk_day(session, kiosk_id, now)
    return ScheduleMessage(
        kiosk_id=day.kiosk_id,
        kiosk_name=day.kiosk_name,
        date=day.date,
        timezone=day.timezone,
        server_time=now,
        visits=day.visits,
    )
