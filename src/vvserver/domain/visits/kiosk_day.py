"""A kiosk's day: its active visits on the facility-local date, for the REST API and its socket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Account, Facility, Kiosk, Person, Visit
from vvserver.domain.booking.availability_store import local_midnight
from vvserver.domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class KioskDayVisit:
    visit: Visit
    person_name: str
    visitor_first_name: str  # a kiosk in a housing unit shows no more of the visitor


@dataclass(frozen=True, slots=True)
class KioskDay:
    kiosk_id: int
    kiosk_name: str
    timezone: str
    tz: ZoneInfo
    date: date
    visits: list[KioskDayVisit]


async def load_kiosk_day(session: AsyncSession, kiosk_id: int, now: datetime) -> KioskDay:
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
    visits = [
        KioskDayVisit(visit, f"{first} {last}", (visitor_name.split() or ["-"])[0])
        for visit, first, last, visitor_name in rows
    ]
    return KioskDay(kiosk.id, kiosk.name, kiosk.timezone, tz, today, visits)
