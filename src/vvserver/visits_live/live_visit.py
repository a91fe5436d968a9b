"""What the media bridge needs to know about a visit, loaded in one query, and its checks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Facility, HousingUnit, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.facilities.rules import VisitingRules, effective
from vvserver.media.offers import OfferRejected
from vvserver.media.room_events import MonitorRefused, RoomClosed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveVisit:
    """A visit with its effective rules (facility rules merged with the unit's override)."""

    visit: Visit
    agency_id: int
    rules: VisitingRules

    @property
    def id(self) -> int:
        return self.visit.id

    @property
    def opens_at(self) -> datetime:
        return self.visit.start_at - timedelta(minutes=self.rules.join_window_minutes)

    @property
    def warnings(self) -> list[timedelta]:
        return [timedelta(seconds=s) for s in self.rules.warning_seconds if s > 0]


async def load_live_visit(session: AsyncSession, visit_id: int, *, lock: bool = False) -> LiveVisit:
    """The visit (row-locked with `lock`, for a write transaction); NotFound when missing."""
    query = (
        select(Visit, Facility.agency_id, Facility.rules, HousingUnit.rules_override)
        .join(Facility, Facility.id == Visit.facility_id)
        .join(HousingUnit, HousingUnit.id == Visit.unit_id)
        .where(Visit.id == visit_id)
    )
    if lock:
        query = query.with_for_update(of=Visit)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("no such visit")
    visit, agency_id, facility_rules, override = row
    try:
        rules = effective(facility_rules, override)
    except (TypeError, ValueError, KeyError) as exc:
        logger.warning("visit %s: unusable rules (%s); using the defaults", visit_id, exc)
        rules = VisitingRules()
    return LiveVisit(visit, agency_id, rules)


def ensure_joinable(live: LiveVisit, now: datetime) -> None:
    """Active (scheduled, ready, live; a ringing visit once answered) and inside its window:
    join window open, not over."""
    visit = live.visit
    if visit.state not in ACTIVE_VISIT_STATES:
        raise Conflict(f"this visit is {visit.state}", code="visit_not_active")
    if visit.state == "ringing":
        raise Conflict("this visit has not been answered yet", code="ring_not_answered")
    if now < live.opens_at:
        raise Conflict(
            f"the visit opens {live.rules.join_window_minutes} minutes before its start",
            code="visit_not_open_yet",
        )
    if now >= visit.end_at:
        raise Conflict("this visit's time is over", code="visit_over")


def ensure_staff_in_scope(principal: Principal, live: LiveVisit) -> None:
    """Officers and admins of the visit's facility (agency admins: of its agency); 404 else."""
    if not principal.is_staff:
        raise NotFound("not found")
    principal.ensure_facility(live.visit.facility_id, live.agency_id)


@contextmanager
def media_errors() -> Iterator[None]:
    """The media layer's refusals as DomainErrors, so HTTP/WebSocket callers get a clean 4xx.

    The media exception's traceback is dropped: its frames would keep a closed peer
    connection alive for as long as the DomainError lives.
    """
    try:
        yield
    except OfferRejected as exc:
        exc.__traceback__ = None
        raise InvalidInput(str(exc), code=exc.code) from None
    except RoomClosed as exc:
        exc.__traceback__ = None
        raise Conflict("this visit's call has ended", code="visit_ended") from None
    except MonitorRefused as exc:
        exc.__traceback__ = None
        if exc.code == "privileged_visit":
            raise Forbidden(str(exc), code=exc.code) from None
        raise Conflict(str(exc), code=exc.code) from None
