"""Searching finished recordings (staff, in scope, never privileged visits); audited.

Dates are facility-local days of the visit's start (the named facility's time zone, else the
caller's facility's, else UTC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Facility, Kiosk, Person, Recording, Visit, VisitFlag
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import Caller, facility_in_scope, reachable_facility_ids
from vvserver.domain.errors import NotFound
from vvserver.domain.recordings.playback import FINISHED, media_files, recording_span
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingSearch:
    facility_id: int | None = None
    person_id: int | None = None
    visitor_id: int | None = None
    kiosk_id: int | None = None
    legal_hold: bool | None = None
    date_from: date | None = None  # facility-local dates of the visit's start, inclusive
    date_to: date | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Named:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PersonRef:
    id: int
    name: str
    booking_number: str


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    visit_id: int
    recording_id: int
    facility_id: int
    person: PersonRef
    visitor: Named
    kiosk: Named
    starts_at: datetime
    ends_at: datetime
    duration_s: float
    size_bytes: int
    flags: int
    legal_hold: bool
    purge_after: datetime | None


@dataclass(frozen=True, slots=True)
class RecordingPage:
    items: list[RecordingSummary]
    total: int


async def local_zone(session: AsyncSession, principal: Principal, facility_id: int | None) -> str:
    """The time zone dates are read in: the named facility's, else the caller's facility's."""
    chosen = facility_id or principal.facility_id
    if chosen is not None:
        facility = await session.get(Facility, chosen)
        if facility is not None:
            return facility.timezone
    return "UTC"


def day_bounds(
    zone: str, date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """UTC instants of the start of ``date_from`` and of the day after ``date_to``."""
    tz = ZoneInfo(zone)
    low = datetime.combine(date_from, time(), tz).astimezone(UTC) if date_from else None
    high = (
        datetime.combine(date_to + timedelta(days=1), time(), tz).astimezone(UTC)
        if date_to
        else None
    )
    return low, high


def _filtered(stmt: Select[Any], principal: Principal, search: RecordingSearch) -> Select[Any]:
    stmt = (
        stmt.join(Visit, Visit.id == Recording.visit_id)
        .where(
            Recording.facility_id.in_(reachable_facility_ids(principal)),
            Recording.state == FINISHED,
            Recording.purged_at.is_(None),
            Visit.privileged.is_(False),
        )
        .order_by(None)
    )
    if search.facility_id is not None:
        stmt = stmt.where(Recording.facility_id == search.facility_id)
    if search.person_id is not None:
        stmt = stmt.where(Visit.person_id == search.person_id)
    if search.visitor_id is not None:
        stmt = stmt.where(Visit.visitor_id == search.visitor_id)
    if search.kiosk_id is not None:
        stmt = stmt.where(Visit.kiosk_id == search.kiosk_id)
    if search.legal_hold is not None:
        stmt = stmt.where(Recording.legal_hold.is_(search.legal_hold))
    return stmt


async def search_recordings(
    services: Services, caller: Caller, search: RecordingSearch
) -> RecordingPage:
    """Finished recordings in scope, newest visit first (audited ``recording.search``)."""
    principal = caller.principal
    if not principal.is_staff:
        raise NotFound("no recordings")
    async with services.read() as session:
        if search.facility_id is not None:
            await facility_in_scope(session, principal, search.facility_id)
        zone = await local_zone(session, principal, search.facility_id)
        low, high = day_bounds(zone, search.date_from, search.date_to)
        flag_count = (
            select(func.count())
            .select_from(VisitFlag)
            .where(VisitFlag.visit_id == Visit.id)
            .correlate(Visit)
            .scalar_subquery()
        )
        rows_stmt = _filtered(
            select(Recording, Visit, Person, Account, Kiosk, flag_count).select_from(Recording),
            principal,
            search,
        )
        count_stmt = _filtered(select(func.count()).select_from(Recording), principal, search)
        if low is not None:
            rows_stmt = rows_stmt.where(Visit.start_at >= low)
            count_stmt = count_stmt.where(Visit.start_at >= low)
        if high is not None:
            rows_stmt = rows_stmt.where(Visit.start_at < high)
            count_stmt = count_stmt.where(Visit.start_at < high)
        rows = (
            await session.execute(
                rows_stmt.join(Person, Person.id == Visit.person_id)
                .join(Account, Account.id == Visit.visitor_id)
                .join(Kiosk, Kiosk.id == Visit.kiosk_id)
                .order_by(Visit.start_at.desc(), Recording.id.desc())
                .limit(search.limit)
                .offset(search.offset)
            )
        ).all()
        total = int((await session.execute(count_stmt)).scalar_one())
    items = []
    for recording, visit, person, visitor, kiosk, flags in rows:
        files = media_files(recording)
        _, duration = recording_span(files)
        items.append(
            RecordingSummary(
                visit_id=visit.id,
                recording_id=recording.id,
                facility_id=recording.facility_id,
                person=PersonRef(
                    person.id, f"{person.first_name} {person.last_name}", person.booking_number
                ),
                visitor=Named(visitor.id, visitor.name),
                kiosk=Named(kiosk.id, kiosk.name),
                starts_at=visit.start_at,
                ends_at=visit.end_at,
                duration_s=duration,
                size_bytes=sum(f.size for f in files),
                flags=int(flags or 0),
                legal_hold=recording.legal_hold,
                purge_after=recording.purge_after,
            )
        )
    criteria = {
        key: (value.isoformat() if isinstance(value, date) else value)
        for key, value in (
            ("facility_id", search.facility_id),
            ("person_id", search.person_id),
            ("visitor_id", search.visitor_id),
            ("kiosk_id", search.kiosk_id),
            ("legal_hold", search.legal_hold),
            ("date_from", search.date_from),
            ("date_to", search.date_to),
        )
        if value is not None
    }
    target = f"facility:{search.facility_id}" if search.facility_id is not None else None
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                "recording.search",
                target=target,
                details={"criteria": criteria, "results": len(items), "total": total},
            ),
            services.clock.now(),
        )
    return RecordingPage(items, total)
