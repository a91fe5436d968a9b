"""A visit with the names and rules around it, as the API, e-mails and calendar files show it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Facility, HousingUnit, Kiosk, Person, Visit
from vvserver.domain.errors import NotFound
from vvserver.domain.facilities.rules import VisitingRules, effective
from vvserver.domain.notices.ics import CalendarVisit, visit_calendar
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, Language, language_of
from vvserver.domain.notices.mail_text import date_time, span_text, text

logger = logging.getLogger(__name__)

MONITORED_NOTICE = text(DEFAULT_LANGUAGE, "notice.monitored")
PRIVILEGED_NOTICE = text(DEFAULT_LANGUAGE, "notice.privileged")


@dataclass(frozen=True, slots=True)
class VisitView:
    visit: Visit
    agency_id: int
    person_name: str
    facility_name: str
    timezone: str
    unit_name: str
    kiosk_name: str
    visitor_name: str
    visitor_email: str
    rules: VisitingRules
    # The visitor's e-mail language: what their confirmations, changes and .ics are written in.
    visitor_language: Language = DEFAULT_LANGUAGE

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def local_start(self) -> datetime:
        return self.visit.start_at.astimezone(self.tz)

    @property
    def local_end(self) -> datetime:
        return self.visit.end_at.astimezone(self.tz)

    @property
    def recorded(self) -> bool:
        return not self.visit.privileged

    @property
    def monitoring_notice(self) -> str:
        return self.monitoring_notice_in(DEFAULT_LANGUAGE)

    def monitoring_notice_in(self, language: Language) -> str:
        return text(language, "notice.privileged" if self.visit.privileged else "notice.monitored")

    def local_start_text(self, language: Language = DEFAULT_LANGUAGE) -> str:
        return date_time(self.local_start, language, "short")

    def local_span_text(self, language: Language = DEFAULT_LANGUAGE) -> str:
        return span_text(self.local_start, self.local_end, self.timezone, language)

    def join_window_text(self, language: Language = DEFAULT_LANGUAGE) -> str:
        return text(language, "join_window", minutes=self.rules.join_window_minutes)


def visit_calendar_text(
    view: VisitView,
    *,
    now: datetime,
    public_url: str,
    url: str | None = None,
    language: Language = DEFAULT_LANGUAGE,
) -> str:
    """The visit as an iCalendar file in ``language``; ``url`` (the join link) only goes into
    the visitor's mail."""
    visit = view.visit
    description = text(
        language,
        "ics.description",
        person=view.person_name,
        facility=view.facility_name,
        span=view.local_span_text(language),
        visit_id=visit.id,
        notice=view.monitoring_notice_in(language),
    )
    if url is not None:
        description += text(language, "ics.join", window=view.join_window_text(language), link=url)
    return visit_calendar(
        CalendarVisit(
            visit_id=visit.id,
            start=visit.start_at,
            end=visit.end_at,
            summary=text(language, "ics.summary", person=view.person_name),
            description=description,
            location=text(language, "ics.location", facility=view.facility_name),
            cancelled=visit.state == "cancelled",
            url=url,
        ),
        now=now,
        public_url=public_url,
    )


def _view_select() -> Any:
    return (
        select(
            Visit,
            Person.first_name,
            Person.last_name,
            Facility.agency_id,
            Facility.name,
            Facility.timezone,
            Facility.rules,
            HousingUnit.name,
            HousingUnit.rules_override,
            Kiosk.name,
            Account.name,
            Account.email,
            Account.language,
        )
        .join(Person, Person.id == Visit.person_id)
        .join(Facility, Facility.id == Visit.facility_id)
        .join(HousingUnit, HousingUnit.id == Visit.unit_id)
        .join(Kiosk, Kiosk.id == Visit.kiosk_id)
        .join(Account, Account.id == Visit.visitor_id)
    )


def _to_views(rows: Sequence[Any]) -> list[VisitView]:
    rules_cache: dict[tuple[int, int], VisitingRules] = {}
    views: list[VisitView] = []
    for row in rows:
        visit: Visit = row[0]
        key = (visit.facility_id, visit.unit_id)
        rules = rules_cache.get(key)
        if rules is None:
            rules = rules_cache[key] = effective(row[6], row[8])
        views.append(
            VisitView(
                visit=visit,
                agency_id=row[3],
                person_name=f"{row[1]} {row[2]}",
                facility_name=row[4],
                timezone=row[5],
                unit_name=row[7],
                kiosk_name=row[9],
                visitor_name=row[10],
                visitor_email=row[11],
                rules=rules,
                visitor_language=language_of(row[12]),
            )
        )
    return views


async def load_view(session: AsyncSession, visit: Visit) -> VisitView:
    rows = (await session.execute(_view_select().where(Visit.id == visit.id))).all()
    if not rows:
        raise NotFound("no such visit")
    return _to_views(rows)[0]


async def load_views(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    *,
    limit: int,
    offset: int = 0,
) -> list[VisitView]:
    """Visits matching every condition (on the joined tables), by start time then id."""
    stmt = (
        _view_select()
        .where(*conditions)
        .order_by(Visit.start_at, Visit.id)
        .limit(limit)
        .offset(offset)
    )
    return _to_views((await session.execute(stmt)).all())
