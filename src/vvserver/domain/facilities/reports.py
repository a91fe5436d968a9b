"""Facility reports: visits per day by outcome, no-show rate, connected and lost minutes, and
how regularly each person in custody is visited (visits per month).

Days and months are the facility's local ones. One bounded query reads the range's visits
(only the columns needed; at most ``MAX_RANGE_DAYS`` days and ``MAX_VISITS`` rows) and the
figures are computed in Python, so they are the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from vvserver.db.models import Person, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import administered_facility
from vvserver.domain.errors import InvalidInput
from vvserver.domain.recordings.search import day_bounds
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366
DEFAULT_DAYS = 30
MAX_VISITS = 200_000
OUTCOMES = ("completed", "no_show", "cancelled", "failed", "terminated")
# Visits whose slot came: the base of the no-show rate.
CAME_DUE = frozenset({"completed", "no_show", "failed", "terminated"})
# Visits that took place (the call happened): connected minutes and contact regularity.
HELD = frozenset({"completed", "terminated"})


@dataclass(frozen=True, slots=True)
class DayCounts:
    date: date
    booked: int
    completed: int
    no_show: int
    cancelled: int
    failed: int
    terminated: int


@dataclass(frozen=True, slots=True)
class MonthCount:
    month: str  # YYYY-MM
    visits: int


@dataclass(frozen=True, slots=True)
class PersonRegularity:
    person_id: int
    name: str
    booking_number: str
    months: list[MonthCount]


@dataclass(frozen=True, slots=True)
class FacilityReport:
    facility_id: int
    timezone: str
    date_from: date
    date_to: date
    visits_per_day: list[DayCounts]
    no_show_rate: float | None
    avg_connected_minutes: float | None
    lost_minutes: float
    contact_regularity: list[PersonRegularity]


def _months(first: date, last: date) -> list[str]:
    months: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


async def facility_report(
    services: Services,
    principal: Principal,
    facility_id: int,
    date_from: date | None,
    date_to: date | None,
) -> FacilityReport:
    """The facility's figures over ``date_from``..``date_to`` (local, inclusive)."""
    async with services.read() as session:
        facility = await administered_facility(session, principal, facility_id)
        zone = ZoneInfo(facility.timezone)
        today = services.clock.now().astimezone(zone).date()
        last = date_to or (
            today if date_from is None else date_from + timedelta(days=DEFAULT_DAYS - 1)
        )
        first = date_from or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise InvalidInput("date_from is after date_to", code="invalid_range")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise InvalidInput(
                f"a report covers at most {MAX_RANGE_DAYS} days", code="range_too_long"
            )
        low, high = day_bounds(facility.timezone, first, last)
        assert low is not None
        assert high is not None
        rows = (
            await session.execute(
                select(
                    Visit.start_at,
                    Visit.state,
                    Visit.person_id,
                    Visit.visitor_connected_s,
                    Visit.kiosk_connected_s,
                    Visit.visitor_lost_s,
                    Visit.kiosk_lost_s,
                )
                .where(
                    Visit.facility_id == facility.id, Visit.start_at >= low, Visit.start_at < high
                )
                .limit(MAX_VISITS + 1)
            )
        ).all()
        if len(rows) > MAX_VISITS:
            raise InvalidInput("too many visits in this range; choose fewer days", code="too_many")
        visited = {row.person_id for row in rows}
        people = list(
            await session.execute(
                select(Person.id, Person.first_name, Person.last_name, Person.booking_number)
                .where(
                    or_(
                        Person.id.in_(visited),
                        (Person.facility_id == facility.id) & (Person.status == "active"),
                    )
                )
                .order_by(Person.last_name, Person.first_name, Person.id)
            )
        )
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    per_person: dict[int, Counter[str]] = defaultdict(Counter)
    connected: list[float] = []
    lost_s = 0.0
    for row in rows:
        local = row.start_at.astimezone(zone)
        counts = per_day[local.date()]
        counts["booked"] += 1
        counts[row.state] += 1
        if row.state in HELD:
            connected.append(min(row.visitor_connected_s, row.kiosk_connected_s))
            per_person[row.person_id][f"{local.year:04d}-{local.month:02d}"] += 1
        if row.state in CAME_DUE:
            lost_s += row.visitor_lost_s + row.kiosk_lost_s
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    visits_per_day = [
        DayCounts(
            date=day,
            booked=per_day[day]["booked"],
            completed=per_day[day]["completed"],
            no_show=per_day[day]["no_show"],
            cancelled=per_day[day]["cancelled"],
            failed=per_day[day]["failed"],
            terminated=per_day[day]["terminated"],
        )
        for day in days
    ]
    due = sum(1 for row in rows if row.state in CAME_DUE)
    no_shows = sum(1 for row in rows if row.state == "no_show")
    months = _months(first, last)
    return FacilityReport(
        facility_id=facility.id,
        timezone=facility.timezone,
        date_from=first,
        date_to=last,
        visits_per_day=visits_per_day,
        no_show_rate=round(no_shows / due, 4) if due else None,
        avg_connected_minutes=round(sum(connected) / len(connected) / 60, 2) if connected else None,
        lost_minutes=round(lost_s / 60, 2),
        contact_regularity=[
            PersonRegularity(
                person_id=person_id,
                name=f"{first_name} {last_name}",
                booking_number=booking_number,
                months=[MonthCount(m, per_person[person_id][m]) for m in months],
            )
            for person_id, first_name, last_name, booking_number in people
        ],
    )
