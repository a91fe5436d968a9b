"""Shared by the roster modules: who acts and in what scope (foreign objects are 404), and
cancelling active visits with a reason the visitor sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    Account,
    Facility,
    HousingUnit,
    Person,
    SeriesOccurrence,
    Visit,
)
from vvserver.domain.accounts.principal import STAFF_ROLES, Principal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import InvalidInput, NotFound
from vvserver.domain.notices.language import DEFAULT_LANGUAGE, Language, language_of
from vvserver.domain.notices.mail_text import (
    Phrase,
    local_date_time,
    mail,
    render_reason,
    text,
)
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.states import transition

logger = logging.getLogger(__name__)

logger = logging.getLogger(__name__)

CANCELLABLE_STATES = ("scheduled", "ready")


class Recorder(Protocol):
    """``RequestContext.record``: builds an audit record with the caller and request id."""

    def __call__(
        self,
        action: str,
        outcome: str = ...,
        target: str | None = ...,
        details: dict[str, Any] | None = ...,
        actor: str | None = ...,
    ) -> AuditRecord: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts (their scope) and how their actions are written to the audit log."""

    principal: Principal
    record: Recorder

    @property
    def actor(self) -> str:
        return self.principal.actor

    async def audit(
        self,
        services: Services,
        session: AsyncSession,
        action: str,
        target: str,
        now: datetime,
        **details: Any,
    ) -> None:
        record = self.record(action, target=target, details=details or None)
        await services.audit.append(session, record, now)


# --------------------------------------------------------------------------- shared helpers


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> ZoneInfo:
    if name not in _known_zones():
        raise InvalidInput(f"unknown IANA time zone {name!r}", code="unknown_timezone")
    return ZoneInfo(name)


def local_time_text(moment: datetime, timezone: str, language: Language = DEFAULT_LANGUAGE) -> str:
    """A visitor-facing wall-clock rendering of ``moment`` in the facility's time zone."""
    return local_date_time(moment, timezone, language, "zone")


def reachable_facility_ids(principal: Principal) -> Select[int]:
    """The ids of the facilities a staff member may see, as a subquery (empty for others)."""
    query = select(Facility.id)
    if principal.role == "agency_admin":
        return query.where(Facility.agency_id == principal.agency_id)
    if principal.role in STAFF_ROLES:
        return query.where(Facility.id == principal.facility_id)
    return query.where(false())


async def facility_in_scope(
    session: AsyncSession, principal: Principal, facility_id: int, *, lock: bool = False
) -> Facility:
    facility = await session.get(Facility, facility_id, with_for_update=lock)
    if facility is None:
        raise NotFound("no such facility")
    principal.ensure_facility(facility.id, facility.agency_id)
    return facility


async def administered_facility(
    session: AsyncSession, principal: Principal, facility_id: int, *, lock: bool = False
) -> Facility:
    facility = await facility_in_scope(session, principal, facility_id, lock=lock)
    principal.ensure_admin_of(facility.id, facility.agency_id)
    return facility


async def unit_of(session: AsyncSession, facility: Facility, unit_id: int) -> HousingUnit:
    unit = await session.get(HousingUnit, unit_id)
    if unit is None or unit.facility_id != facility.id:
        raise InvalidInput("that housing unit is not in this facility", code="unit_not_in_facility")
    return unit


async def cancel_visits(
    session: AsyncSession,
    *conditions: ColumnElement[bool],
    actor: str,
    reason: str | Phrase,
    now: datetime,
) -> list[int]:
    """Cancel the scheduled/ready visits matching ``conditions`` that have not ended yet.

    ``reason`` is shown to the visitor (stored on the visit in English, and e-mailed in the
    visitor's language when the server composed it as a ``Phrase``). Returns the visit ids.
    A visit booked by a standing weekly visit is cancelled alone: the e-mail says the series
    goes on (while the person is still in custody here).
    """
    rows = (
        await session.execute(
            select(Visit, Account, Person, Facility)
            .join(Account, Account.id == Visit.visitor_id)
            .join(Person, Person.id == Visit.person_id)
            .join(Facility, Facility.id == Visit.facility_id)
            .where(Visit.state.in_(CANCELLABLE_STATES), Visit.end_at > now, *conditions)
            .order_by(Visit.start_at, Visit.id)
            .with_for_update(of=Visit)
        )
    ).all()
    from_series: set[int | None] = set()
    if rows:
        ids = [visit.id for visit, *_ in rows]
        found = await session.scalars(
            select(SeriesOccurrence.visit_id).where(SeriesOccurrence.visit_id.in_(ids))
        )
        from_series = set(found.all())
    stored = render_reason(reason, DEFAULT_LANGUAGE)
    for visit, visitor, person, facility in rows:
        transition(session, visit, "cancelled", actor=actor, reason=stored, now=now)
        language = language_of(visitor.language)
        series_goes_on = visit.id in from_series and person.status == "active"
        message = mail(
            language,
            "visits_cancelled",
            name=visitor.name,
            person=f"{person.first_name} {person.last_name}",
            facility=facility.name,
            when=local_time_text(visit.start_at, facility.timezone, language),
            reason=render_reason(reason, language),
            series_note=(text(language, "visits_cancelled.series_note") if series_goes_on else ""),
        )
        queue_email(
            session,
            now,
            kind="visit_cancelled",
            to=visitor.email,
            subject=message.subject,
            body=message.body,
        )
    return [visit.id for visit, *_ in rows]
