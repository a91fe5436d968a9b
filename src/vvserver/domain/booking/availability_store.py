"""Loads from the database what the pure slot engine (``domain.availability``) needs.

Two prepared Core statements (``availability_sql``: ``PARTIES`` and ``FACTS``, one driver round
trip each on SQLite) give the person with the effective rules (facility rules merged with the
unit override) and time zone, the visitor's standing, and everything the range's weeks hold.
Booking runs the same statements inside its write transaction, with the rows locked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES
from vvserver.db.prepared import Row
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.booking.availability import (
    AvailabilityQuery,
    FreeSlot,
    Interval,
    free_slots,
    week_start,
)
from vvserver.domain.booking.availability_sql import (
    FACTS,
    KIOSKS_LOCKED,
    PARTIES,
    PARTIES_LOCKED,
    PERSON,
)
from vvserver.domain.errors import Forbidden, NotFound
from vvserver.domain.facilities.rules import VisitingRules, effective
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, Language, language_of
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

# States whose visits count against the weekly caps (when ``counts_toward_limit`` is set).
COUNTED_STATES = frozenset({"completed", "no_show", "terminated", *ACTIVE_VISIT_STATES})
_ACTIVE = frozenset(ACTIVE_VISIT_STATES)
# No visit lasts longer than this; bounds the index range scans on ``start_at``.
_LONGEST_VISIT = timedelta(days=1)
_WEEK = timedelta(days=7)
_NOBODY = -1  # an id no row has: the visitor part of FACTS for staff


@dataclass(frozen=True, slots=True)
class PersonContext:
    """A person in custody with what scheduling needs from the facility and the housing unit."""

    person_id: int
    agency_id: int
    facility_id: int
    unit_id: int
    status: str
    suspended_until: datetime | None
    first_name: str
    last_name: str
    facility_name: str
    timezone: str
    unit_name: str
    rules: VisitingRules

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class VisitorStanding:
    """The visitor's side of a booking: verification, approval for the person, bans."""

    visitor_id: int
    name: str
    email: str
    verified: bool
    approval_status: str | None
    professional: str
    ban_ends_at: datetime | None  # latest end of a ban at the person's facility not lifted
    language: Language = DEFAULT_LANGUAGE  # of the visitor's e-mails

    @property
    def approved(self) -> bool:
        return self.approval_status == "approved"

    @property
    def privileged(self) -> bool:
        return self.professional in ("attorney", "clergy")

    def banned_at(self, moment: datetime) -> bool:
        return self.ban_ends_at is not None and self.ban_ends_at > moment


def _person(row: Row) -> PersonContext:
    return PersonContext(
        person_id=row[0],
        agency_id=row[1],
        facility_id=row[2],
        unit_id=row[3],
        status=row[4],
        suspended_until=row[5],
        first_name=row[6],
        last_name=row[7],
        facility_name=row[8],
        timezone=row[9],
        rules=effective(row[10], row[12]),
        unit_name=row[11],
    )


async def load_person(session: AsyncSession, person_id: int) -> PersonContext | None:
    """The person with facility and unit."""
    row = await PERSON.first(session, person=person_id)
    return None if row is None else _person(row)


async def load_parties(
    session: AsyncSession, person_id: int, visitor_id: int, *, lock: bool = False
) -> tuple[PersonContext, VisitorStanding] | None:
    """The person and the visitor's standing with them; None when either does not exist.

    ``lock`` takes the person's and the visitor's rows (``FOR UPDATE`` on PostgreSQL).
    """
    row = await (PARTIES_LOCKED if lock else PARTIES).first(
        session, person=person_id, visitor=visitor_id
    )
    if row is None:
        return None
    standing = VisitorStanding(
        visitor_id=row[13],
        name=row[14],
        email=row[15],
        verified=row[16] is not None and row[17] == "verified",
        approval_status=row[18],
        professional=row[19] or "none",
        ban_ends_at=row[20],
        language=language_of(row[21]),
    )
    return _person(row), standing


async def lock_unit_kiosks(session: AsyncSession, unit_id: int) -> None:
    """Lock every kiosk row of the unit, in id order, so bookings in one unit queue up here.

    PostgreSQL only: SQLite has no row locks (its write transactions are serialised whole).
    """
    if session.get_bind().dialect.name != "sqlite":
        await KIOSKS_LOCKED.rows(session, unit=unit_id)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a facility-local date begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Facts:
    query: AvailabilityQuery
    kiosk_names: dict[int, str]  # the unit's enabled kiosks
    last_visit_id: int


async def load_query(
    session: AsyncSession,
    person: PersonContext,
    *,
    now: datetime,
    first_day: date,
    last_day: date,
    visitor_id: int | None,
    not_before: datetime | None = None,
    only: Interval | None = None,
) -> Facts:
    """Build the engine's query for local dates ``first_day..last_day`` with one select.

    ``only``: the caller cares about this one slot, so kiosk visits are loaded just around it.
    ``not_before``: no slot before this instant (e.g. the end of a visitor ban).
    """
    rules, tz = person.rules, person.tz
    pad = timedelta(minutes=rules.buffer_minutes)
    if only is not None:
        lo, hi = only.start, only.end
    else:
        lo = max(local_midnight(first_day, tz), now + timedelta(minutes=rules.lead_min_minutes))
        hi = min(
            local_midnight(last_day + timedelta(days=1), tz),
            now + timedelta(days=rules.lead_max_days, minutes=rules.slot_minutes),
        )
    hi = max(hi, lo)
    weeks_lo = local_midnight(first_day - timedelta(days=first_day.weekday()), tz)
    weeks_hi = local_midnight(last_day - timedelta(days=last_day.weekday()) + _WEEK, tz)
    rows = await FACTS.rows(
        session,
        unit=person.unit_id,
        person=person.person_id,
        visitor=_NOBODY if visitor_id is None else visitor_id,
        facility=person.facility_id,
        kiosk_from=lo - pad - _LONGEST_VISIT,
        kiosk_lo=lo - pad,
        kiosk_hi=hi + pad,
        weeks_from=weeks_lo - _LONGEST_VISIT,
        weeks_lo=weeks_lo,
        weeks_hi=weeks_hi,
    )
    kiosk_names: dict[int, str] = {}
    last_visit_id = 0
    kiosk_busy: dict[int, list[Interval]] = defaultdict(list)
    person_rows: list[Row] = []
    visitor_rows: list[Row] = []
    blackouts: list[Interval] = []
    for row in rows:
        kind = row[0]
        if kind == "k":
            kiosk_busy[row[1]].append(Interval(row[2], row[3]))
        elif kind == "p":
            person_rows.append(row)
        elif kind == "v":
            visitor_rows.append(row)
        elif kind == "b":
            blackouts.append(Interval(row[2], row[3]))
        elif kind == "e":
            kiosk_names[row[1]] = row[4]
        else:
            last_visit_id = row[1] or 0
    person_busy, person_weeks = _busy_and_weeks(person_rows, person.facility_id, weeks_lo, tz)
    # The visitor is busy at any facility; the cap counts this facility's visits (its rules).
    visitor_busy, visitor_weeks = _busy_and_weeks(visitor_rows, person.facility_id, weeks_lo, tz)
    suspended = person.suspended_until
    if not_before is not None and (suspended is None or not_before > suspended):
        suspended = not_before
    query = AvailabilityQuery(
        now=now,
        rules=rules,
        tz=tz,
        first_day=first_day,
        last_day=last_day,
        kiosk_ids=sorted(kiosk_names),
        kiosk_busy=kiosk_busy,
        person_busy=person_busy,
        blackouts=blackouts,
        person_week_counts=person_weeks,
        visitor_busy=visitor_busy,
        visitor_week_counts=None if visitor_id is None else visitor_weeks,
        suspended_until=suspended,
    )
    return Facts(query, kiosk_names, last_visit_id)


def _busy_and_weeks(
    rows: Sequence[Row], facility_id: int, weeks_lo: datetime, tz: ZoneInfo
) -> tuple[list[Interval], dict[date, int]]:
    """Active visits (busy times), and the visits at ``facility_id`` that count against the
    weekly caps, per local week."""
    busy: list[Interval] = []
    weeks: dict[date, int] = defaultdict(int)
    for _kind, _kiosk, start, end, state, counts, makeup, at_facility in rows:
        if state in _ACTIVE:
            busy.append(Interval(start, end))
        if (
            counts
            and makeup is None
            and state in COUNTED_STATES
            and at_facility == facility_id
            and start >= weeks_lo
        ):
            weeks[week_start(start, tz)] += 1
    return busy, weeks


@dataclass(frozen=True, slots=True)
class Availability:
    person: PersonContext
    slots: list[FreeSlot]
    notice: str | None  # why nothing can be booked at all, when that is the case


async def person_availability(
    services: Services, principal: Principal, person_id: int, first_day: date, last_day: date
) -> Availability:
    """Bookable slots for the person on local dates ``first_day..last_day``.

    A visitor must be approved for the person (their own visits, weekly cap and bans apply);
    staff see the person's slots within their scope.
    """
    now = services.clock.now()
    visitor_id: int | None = None
    not_before: datetime | None = None
    async with services.read() as session:
        if principal.role == "visitor":
            found = await load_parties(session, person_id, principal.require_account_id())
            if found is None or not found[1].approved:
                raise Forbidden(
                    "you are not on this person's approved visitor list", code="not_approved"
                )
            person, standing = found
            visitor_id, not_before = standing.visitor_id, standing.ban_ends_at
        else:
            loaded = await load_person(session, person_id)
            if loaded is None:
                raise NotFound("no such person")
            person = loaded
            principal.ensure_facility(person.facility_id, person.agency_id)
        notice = _notice(person, now, not_before)
        if person.status != "active":
            return Availability(person, [], notice)
        facts = await load_query(
            session,
            person,
            now=now,
            first_day=first_day,
            last_day=last_day,
            visitor_id=visitor_id,
            not_before=not_before,
        )
    return Availability(person, free_slots(facts.query), notice)


def _notice(person: PersonContext, now: datetime, ban_ends_at: datetime | None) -> str | None:
    if person.status != "active":
        return "person_unavailable"
    if ban_ends_at is not None and ban_ends_at > now:
        return "visitor_banned"
    if person.suspended_until is not None and person.suspended_until > now:
        return "person_suspended"
    return None
