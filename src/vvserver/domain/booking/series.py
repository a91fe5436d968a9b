"""Standing weekly visits: a visitor's "every Sunday at 2 PM with this person".

The visitor creates, pauses, resumes and cancels a series; staff see the series of the people in
their scope. The bookings themselves are made by the scheduler (``series_booking``, run by
``scheduling.series_jobs``) when each occurrence's booking window opens, through the same
booking code as a visitor's own booking. Visits a series already booked stay booked when it is
paused or cancelled (the visitor cancels them like any visit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    Account,
    Facility,
    HousingUnit,
    Person,
    SeriesOccurrence,
    Visit,
    VisitSeries,
)
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import reachable_facility_ids
from vvserver.domain.booking.availability import grid_slot_at
from vvserver.domain.booking.availability_store import load_parties
from vvserver.domain.booking.series_time import (
    first_bookable_date,
    index_start,
    occurrence_start,
    parse_local_time,
)
from vvserver.domain.booking.slot_checks import Minor, check_minors
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.facilities.rules import VisitingRules, effective
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, Language
from vvserver.domain.notices.mail_text import text
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

OPEN_STATES = ("active", "paused")
SERIES_STATES = ("active", "paused", "cancelled", "ended")
# Open (active or paused) series one visitor may have: bounds the scheduler's weekly work.
MAX_OPEN_SERIES_PER_VISITOR = 7
# Occurrences shown with a series (newest first).
OCCURRENCES_SHOWN = 8
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class OccurrenceView:
    local_date: date
    start_at: datetime
    outcome: str
    visit_id: int | None
    visit_state: str | None
    reason_code: str | None
    reason: str | None
    alternatives: list[tuple[datetime, datetime]]


@dataclass(frozen=True, slots=True)
class SeriesView:
    series: VisitSeries
    person_name: str
    visitor_name: str
    facility_id: int
    facility_name: str
    timezone: str
    # When the next occurrence will be booked (its booking window opens); None unless active.
    books_at: datetime | None
    occurrences: list[OccurrenceView]


def describe(series: VisitSeries, language: Language = DEFAULT_LANGUAGE) -> str:
    """ "every Sunday at 14:00", "cada domingo a las 14:00": the weekday in ``language``."""
    weekday = text(language, f"weekday.{series.weekday}")
    return text(language, "series.every", weekday=weekday, time=series.local_time)


async def _view(session: AsyncSession, series: VisitSeries, now: datetime) -> SeriesView:
    row = (
        await session.execute(
            select(Person, Account.name, Facility)
            .join(Facility, Facility.id == Person.facility_id)
            .join(Account, Account.id == series.visitor_id)
            .where(Person.id == series.person_id)
        )
    ).one()
    person, visitor_name, facility = row
    occurrences = (
        await session.execute(
            select(SeriesOccurrence, Visit.state)
            .outerjoin(Visit, Visit.id == SeriesOccurrence.visit_id)
            .where(SeriesOccurrence.series_id == series.id)
            .order_by(SeriesOccurrence.local_date.desc())
            .limit(OCCURRENCES_SHOWN)
        )
    ).all()
    books_at = None
    if series.state == "active":
        rules = await _unit_rules(session, person, facility)
        books_at = max(now, series.next_start_at - timedelta(days=rules.lead_max_days))
    return SeriesView(
        series=series,
        person_name=f"{person.first_name} {person.last_name}",
        visitor_name=visitor_name,
        facility_id=facility.id,
        facility_name=facility.name,
        timezone=facility.timezone,
        books_at=books_at,
        occurrences=[
            OccurrenceView(
                local_date=occ.local_date,
                start_at=occ.start_at,
                outcome=occ.outcome,
                visit_id=occ.visit_id,
                visit_state=state,
                reason_code=occ.reason_code,
                reason=occ.reason,
                alternatives=[
                    (datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]))
                    for a in occ.alternatives
                ],
            )
            for occ, state in occurrences
        ],
    )


async def _unit_rules(session: AsyncSession, person: Person, facility: Facility) -> VisitingRules:
    unit = await session.get(HousingUnit, person.unit_id)
    return effective(facility.rules, unit.rules_override if unit is not None else None)


async def create_series(
    services: Services,
    principal: Principal,
    *,
    person_id: int,
    weekday: int,
    at: str,
    minors: list[Minor],
) -> SeriesView:
    """A new active series; its first occurrence is the first one the lead time still allows.

    The time must be a visit slot of the person's housing unit on that weekday (422
    ``not_a_slot``); the visitor must be verified and approved, as for booking.
    """
    visitor_id = principal.require_account_id()
    local = parse_local_time(at)
    if not 0 <= weekday <= 6:
        raise InvalidInput("weekday is 0 (Monday) to 6 (Sunday)", code="invalid_weekday")
    now = services.clock.now()
    async with services.write() as session:
        found = await load_parties(session, person_id, visitor_id)
        if found is not None and not found[1].verified:
            raise Forbidden(
                "confirm your e-mail address and have your ID checked before booking",
                code="visitor_not_verified",
            )
        if found is None or not found[1].approved:
            raise Forbidden(
                "you are not on this person's approved visitor list", code="not_approved"
            )
        person, _standing = found
        if person.status != "active":
            raise Conflict(
                "this person cannot have visits at the moment", code="person_unavailable"
            )
        tz = person.tz
        first = first_bookable_date(
            now, weekday, local, tz, person.rules.lead_min_minutes, now.astimezone(tz).date()
        )
        start = occurrence_start(first, local, tz)
        if start is None or grid_slot_at(person.rules, tz, start) is None:
            raise InvalidInput(
                f"{WEEKDAY_NAMES[weekday]} at {at} is not a visit slot at this facility; "
                "pick a time from the availability list",
                code="not_a_slot",
            )
        check_minors(minors, first)
        await _check_limits(session, visitor_id, person_id, weekday, at)
        series = VisitSeries(
            visitor_id=visitor_id,
            person_id=person_id,
            weekday=weekday,
            local_time=at,
            minors=[{"name": m.name, "date_of_birth": m.date_of_birth.isoformat()} for m in minors],
            state="active",
            next_date=first,
            next_start_at=start,
            end_reason=None,
            created_at=now,
            updated_at=now,
        )
        session.add(series)
        await session.flush()
        logger.info("series %s created by %s: %s", series.id, principal.actor, describe(series))
        return await _view(session, series, now)


async def _check_limits(
    session: AsyncSession, visitor_id: int, person_id: int, weekday: int, at: str
) -> None:
    open_series = select(VisitSeries).where(
        VisitSeries.visitor_id == visitor_id, VisitSeries.state.in_(OPEN_STATES)
    )
    count = await session.scalar(select(func.count()).select_from(open_series.subquery()))
    if (count or 0) >= MAX_OPEN_SERIES_PER_VISITOR:
        raise Conflict(
            f"you can have at most {MAX_OPEN_SERIES_PER_VISITOR} weekly visits; cancel one first",
            code="too_many_series",
        )
    same = await session.scalar(
        open_series.where(
            VisitSeries.person_id == person_id,
            VisitSeries.weekday == weekday,
            VisitSeries.local_time == at,
        ).limit(1)
    )
    if same is not None:
        raise Conflict("you already have this weekly visit", code="series_exists")


async def list_series(
    services: Services,
    principal: Principal,
    *,
    facility_id: int | None = None,
    person_id: int | None = None,
    include_closed: bool = False,
) -> list[SeriesView]:
    """A visitor's own series; staff: the series of the people in their scope."""
    now = services.clock.now()
    query = select(VisitSeries).join(Person, Person.id == VisitSeries.person_id)
    if principal.role == "visitor":
        query = query.where(VisitSeries.visitor_id == principal.require_account_id())
    else:
        query = query.where(Person.facility_id.in_(reachable_facility_ids(principal)))
    if facility_id is not None:
        query = query.where(Person.facility_id == facility_id)
    if person_id is not None:
        query = query.where(VisitSeries.person_id == person_id)
    if not include_closed:
        query = query.where(VisitSeries.state.in_(OPEN_STATES))
    query = query.order_by(VisitSeries.weekday, VisitSeries.local_time, VisitSeries.id).limit(500)
    async with services.read() as session:
        rows = list((await session.scalars(query)).all())
        return [await _view(session, series, now) for series in rows]


async def _series_in_scope(
    session: AsyncSession, principal: Principal, series_id: int, *, lock: bool = False
) -> VisitSeries:
    series = await session.get(VisitSeries, series_id, with_for_update=lock)
    if series is None:
        raise NotFound("no such series")
    if principal.role == "visitor":
        if series.visitor_id != principal.account_id:
            raise NotFound("no such series")
        return series
    person = await session.get(Person, series.person_id)
    facility = None if person is None else await session.get(Facility, person.facility_id)
    if facility is None:
        raise NotFound("no such series")
    principal.ensure_facility(facility.id, facility.agency_id)
    return series


async def get_series(services: Services, principal: Principal, series_id: int) -> SeriesView:
    async with services.read() as session:
        series = await _series_in_scope(session, principal, series_id)
        return await _view(session, series, services.clock.now())


async def change_series(
    services: Services, principal: Principal, series_id: int, action: str
) -> SeriesView:
    """The visitor pauses, resumes or cancels their series (``action``).

    Pausing stops the bookings; resuming books again from the first occurrence the lead time
    allows (weeks passed while paused are not booked after the fact); cancelling is final.
    """
    now = services.clock.now()
    async with services.write() as session:
        series = await _series_in_scope(session, principal, series_id, lock=True)
        if principal.role != "visitor":
            raise NotFound("no such series")
        old = series.state
        if action == "pause":
            if old != "active":
                raise Conflict(f"this weekly visit is {old}", code="series_not_active")
            series.state = "paused"
        elif action == "resume":
            if old != "paused":
                raise Conflict(f"this weekly visit is {old}", code="series_not_paused")
            await _restart(session, series, now)
            series.state = "active"
        elif action == "cancel":
            if old not in OPEN_STATES:
                raise Conflict(f"this weekly visit is {old}", code="series_closed")
            series.state = "cancelled"
            series.end_reason = "cancelled by the visitor"
        else:
            raise InvalidInput(f"unknown action {action!r}", code="invalid_action")
        series.updated_at = now
        logger.info("series %s: %s -> %s (%s)", series.id, old, series.state, principal.actor)
        return await _view(session, series, now)


async def _restart(session: AsyncSession, series: VisitSeries, now: datetime) -> None:
    person = await session.get(Person, series.person_id)
    facility = None if person is None else await session.get(Facility, person.facility_id)
    if person is None or facility is None:
        raise NotFound("no such series")
    rules = await _unit_rules(session, person, facility)
    tz = ZoneInfo(facility.timezone)
    local = time.fromisoformat(series.local_time)
    series.next_date = first_bookable_date(
        now, series.weekday, local, tz, rules.lead_min_minutes, series.next_date
    )
    series.next_start_at = index_start(series.next_date, local, tz)
