"""A kiosk's day: its active visits on the facility-local date, for the REST API and its socket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    ACTIVE_VISIT_STATES,
    Account,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
)
from vvserver.domain.booking.availability_store import local_midnight
from vvserver.domain.errors import NotFound
from vvserver.domain.facilities.rules import effective


@dataclass(frozen=True, slots=True)
class KioskVisit:
    """One visit of a kiosk's day, as the kiosk may see it (both the API and the socket send it)."""

    id: int
    state: str
    start: datetime  # facility-local time
    end: datetime
    start_utc: datetime
    end_utc: datetime
    person_name: str
    visitor_first_name: str  # a kiosk in a housing unit shows no more of the visitor
    minors_count: int
    privileged: bool
    pin_required: bool  # the resident enters their PIN before the call (the unit's rules)
    on_demand: str | None = None  # Visit now: who started it ("visitor" or "kiosk")


@dataclass(frozen=True, slots=True)
class KioskDay:
    kiosk_id: int
    kiosk_name: str
    timezone: str
    date: date
    visits: list[KioskVisit]


async def pin_required_for(session: AsyncSession, visit: Visit) -> bool:
    """Whether the visit's rules (facility, then its unit's override) ask for the PIN."""
    facility = await session.get(Facility, visit.facility_id)
    unit = await session.get(HousingUnit, visit.unit_id)
    rules = effective(
        facility.rules if facility is not None else None,
        unit.rules_override if unit is not None else None,
    )
    return rules.kiosk_pin_required


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
        KioskVisit(
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
            pin_required=await pin_required_for(session, visit),
            on_demand=visit.on_demand,
        )
        for visit, first, last, visitor_name in rows
    ]
    return KioskDay(kiosk.id, kiosk.name, kiosk.timezone, today, visits)
