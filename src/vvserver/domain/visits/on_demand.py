"""Visit now: on-demand visits that start at once, started by either side.

* A visitor approved for a person presses "Visit now" (``start_visit_now``) when the person's
  unit allows on-demand visits (``VisitingRules.on_demand_*``) and an online kiosk of that unit
  is free for the whole reserved span: the kiosk rings.
* A resident at an idle kiosk rings one of their approved visitors who is available now
  (``ring_visitor``): the visitor's open page rings.

Either way the booking is a real visit row from the first ring, in the active state
``ringing``: it holds the kiosk (the same atomic booking as a booked visit: the parties' rows,
then the unit's kiosk rows, locked in that order on PostgreSQL; the serialised write on
SQLite; the unique kiosk/start index as the backstop), counts toward the weekly limits where
the rules say so, and shows on the officers' live board. It reserves ``RING_SECONDS`` of ring
time plus the visit's length from now; answering it (``ring_answer``) moves it to ``ready``,
starting now with the full length; an unanswered ring ends as ``declined`` at ``ring_until``
(a scheduler job, so a restart does not lose the deadline).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Approval, Kiosk, Person, Visit, VisitTransition
from vvserver.db.wakeups import note_change
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.booking.availability import Interval, first_free_kiosk, week_start
from vvserver.domain.booking.availability_store import (
    PersonContext,
    VisitorStanding,
    load_parties,
    load_query,
    lock_unit_kiosks,
)
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import RingEvent, publish_after_commit
from vvserver.domain.visits.join_links import IssuedVisit, issue_join_token, join_url
from vvserver.domain.visits.on_demand_hours import in_on_demand_hours
from vvserver.domain.visits.views import load_view

logger = logging.getLogger(__name__)

# How long a ring waits for an answer; the visit's kiosk is held for it.
RING_SECONDS = 60
# End states that do not make the next on-demand visit wait (it never took place).
_NOT_HELD = ("declined", "cancelled")

KioskFilter = Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class NowOffer:
    """Whether an on-demand visit can start now, on which kiosk, or why not (code, message)."""

    person: PersonContext
    start: datetime
    reserved_end: datetime  # the ring time plus the visit's length
    kiosk_id: int | None = None
    code: str | None = None
    message: str | None = None

    @property
    def available(self) -> bool:
        return self.code is None

    @property
    def minutes(self) -> int:
        return self.person.rules.on_demand_minutes

    def refuse(self) -> None:
        if self.code is not None:
            raise Conflict(self.message or self.code, code=self.code)


async def _last_on_demand_end(session: AsyncSession, person_id: int) -> datetime | None:
    found: datetime | None = await session.scalar(
        select(func.max(Visit.end_at)).where(
            Visit.person_id == person_id,
            Visit.on_demand.is_not(None),
            Visit.state.not_in(_NOT_HELD),
        )
    )
    return found


async def _offer(
    session: AsyncSession,
    person: PersonContext,
    standing: VisitorStanding,
    now: datetime,
    kiosk_ok: KioskFilter,
) -> NowOffer:
    """Every rule of an on-demand visit for these two people from ``now``, in one read."""
    rules = person.rules
    start = now.replace(microsecond=0)
    end = start + timedelta(seconds=RING_SECONDS, minutes=rules.on_demand_minutes)
    offer = NowOffer(person, start, end)

    def no(code: str, message: str) -> NowOffer:
        return NowOffer(person, start, end, None, code, message)

    if not rules.on_demand_enabled:
        return no("on_demand_off", "visits without booking are not offered in this housing unit")
    if standing.privileged and not rules.on_demand_privileged:
        return no("on_demand_privileged", "attorney and clergy visits are booked ahead here")
    if person.status != "active" or (
        person.suspended_until is not None and person.suspended_until > start
    ):
        return no("person_unavailable", "this person cannot have visits at the moment")
    if standing.banned_at(start):
        return no("visitor_banned", "you may not visit at this facility at the moment")
    span = Interval(start, end)
    if not in_on_demand_hours(rules, person, span):
        return no("outside_on_demand_hours", "visits without booking are not offered now")
    day = start.astimezone(person.tz).date()
    facts = await load_query(
        session,
        person,
        now=now,
        first_day=day,
        last_day=day,
        visitor_id=standing.visitor_id,
        only=span,
    )
    q = facts.query
    if any(b.overlaps(span) for b in q.blackouts):
        return no("blackout", "visits are suspended at the moment")
    if rules.on_demand_counts_toward_limit:
        week = week_start(start, person.tz)
        if q.person_week_counts.get(week, 0) >= rules.max_visits_per_person_week:
            return no("person_weekly_limit", "this person has no visits left this week")
        counts = q.visitor_week_counts or {}
        if counts.get(week, 0) >= rules.max_visits_per_visitor_week:
            return no("visitor_weekly_limit", "you have no visits left this week")
    pad = timedelta(minutes=rules.buffer_minutes)
    widened = Interval(start - pad, end + pad)
    if any(iv.overlaps(widened) for iv in q.person_busy):
        return no("person_busy", "this person has another visit now")
    if any(iv.overlaps(widened) for iv in q.visitor_busy):
        return no("visitor_busy", "you have another visit now")
    last = await _last_on_demand_end(session, person.person_id)
    if last is not None and last + timedelta(minutes=rules.on_demand_gap_minutes) > start:
        return no("on_demand_too_soon", "this person had a visit without booking a short while ago")
    candidates = [kiosk_id for kiosk_id in q.kiosk_ids if kiosk_ok(kiosk_id)]
    if not candidates:
        return no("kiosk_offline", "no kiosk of this housing unit is online")
    kiosk_id = first_free_kiosk(span, candidates, q.kiosk_busy, rules.buffer_minutes)
    if kiosk_id is None:
        return no("kiosk_busy", "no kiosk is free for a whole visit now")
    return NowOffer(offer.person, start, end, kiosk_id)


def _check_standing(found: tuple[PersonContext, VisitorStanding] | None) -> None:
    if found is not None and not found[1].verified:
        raise Forbidden(
            "confirm your e-mail address and have your ID checked before visiting",
            code="visitor_not_verified",
        )
    if found is None or not found[1].approved:
        raise Forbidden("you are not on this person's approved visitor list", code="not_approved")


async def visit_now_offer(
    services: Services, visitor_id: int, person_id: int, kiosk_online: KioskFilter
) -> NowOffer:
    """Whether the visitor could start a visit with the person now (the "Visit now" button)."""
    async with services.read() as session:
        found = await load_parties(session, person_id, visitor_id)
        _check_standing(found)
        assert found is not None
        return await _offer(session, *found, services.clock.now(), kiosk_online)


@dataclass(frozen=True, slots=True)
class RingStart:
    person_id: int
    visitor_id: int
    started_by: str  # "visitor" | "kiosk"
    actor: str
    request_id: str | None


async def _book_ringing(services: Services, start: RingStart, kiosk_ok: KioskFilter) -> IssuedVisit:
    """Book the on-demand visit (state ``ringing``) in one write transaction; 409 with the
    reason when it cannot start now."""
    try:
        async with services.write() as session:
            now = services.clock.now()
            found = await load_parties(session, start.person_id, start.visitor_id, lock=True)
            _check_standing(found)
            assert found is not None
            person, standing = found
            await lock_unit_kiosks(session, person.unit_id)
            offer = await _offer(session, person, standing, now, kiosk_ok)
            offer.refuse()
            assert offer.kiosk_id is not None
            visit = _ringing_visit(offer, standing, start.started_by, now)
            session.add(visit)
            await session.flush()  # a taken kiosk/start fails here, on the unique index
            token, visit.join_token_hash = issue_join_token(
                services.secret,
                visit_id=visit.id,
                visitor_id=visit.visitor_id,
                start_at=visit.start_at,
                end_at=visit.end_at,
                join_window_minutes=person.rules.join_window_minutes,
                issued_at=now,
            )
            session.add(
                VisitTransition(
                    visit_id=visit.id,
                    at=now,
                    from_state=None,
                    to_state="ringing",
                    actor=start.actor,
                    reason=f"on demand: started by the {start.started_by}",
                )
            )
            note_change(session, "scheduler")  # its ring deadline
            await services.audit.append(
                session,
                AuditRecord(
                    actor=start.actor,
                    action="visit.on_demand.start",
                    outcome="success",
                    target=f"visit:{visit.id}",
                    request_id=start.request_id,
                    component="api" if start.started_by == "visitor" else "signaling",
                    details={"started_by": start.started_by, "kiosk_id": visit.kiosk_id},
                ),
                now,
            )
            publish_after_commit(session, ring_event(visit, "ringing"))
            view = await load_view(session, visit)
    except IntegrityError as exc:
        raise Conflict("the kiosk has just been taken", code="kiosk_busy") from exc
    logger.info(
        "visit %s: on demand, started by %s %s, ringing kiosk %s until %s",
        visit.id,
        start.started_by,
        start.actor,
        visit.kiosk_id,
        visit.ring_until,
    )
    return IssuedVisit(view=view, join_url=join_url(services, token))


def _ringing_visit(
    offer: NowOffer, standing: VisitorStanding, started_by: str, now: datetime
) -> Visit:
    person, rules = offer.person, offer.person.rules
    assert offer.kiosk_id is not None
    return Visit(
        facility_id=person.facility_id,
        unit_id=person.unit_id,
        kiosk_id=offer.kiosk_id,
        person_id=person.person_id,
        visitor_id=standing.visitor_id,
        start_at=offer.start,
        end_at=offer.reserved_end,
        state="ringing",
        privileged=standing.privileged,
        minors=[],
        counts_toward_limit=rules.on_demand_counts_toward_limit,
        limit_exempt=not rules.on_demand_counts_toward_limit,
        on_demand=started_by,
        ring_until=offer.start + timedelta(seconds=RING_SECONDS),
        created_at=now,
        updated_at=now,
    )


def ring_event(visit: Visit, state: str) -> RingEvent:
    return RingEvent(
        visit_id=visit.id,
        kiosk_id=visit.kiosk_id,
        visitor_id=visit.visitor_id,
        facility_id=visit.facility_id,
        started_by=visit.on_demand or "visitor",
        state=state,
    )


async def start_visit_now(
    services: Services,
    *,
    visitor_id: int,
    person_id: int,
    kiosk_online: KioskFilter,
    actor: str,
    request_id: str | None = None,
) -> IssuedVisit:
    """The visitor pressed "Visit now": book the lowest free online kiosk and ring it."""
    return await _book_ringing(
        services, RingStart(person_id, visitor_id, "visitor", actor, request_id), kiosk_online
    )


@dataclass(frozen=True, slots=True)
class AvailableVisitor:
    """An approved visitor the resident may ring now, as the kiosk may show them."""

    approval_id: int
    first_name: str
    relationship: str


async def kiosk_unit(session: AsyncSession, kiosk_id: int) -> int:
    unit_id: int | None = await session.scalar(
        select(Kiosk.unit_id).where(Kiosk.id == kiosk_id, Kiosk.enabled.is_(True))
    )
    if unit_id is None:
        raise NotFound("no such kiosk")
    return unit_id


async def available_visitors(
    services: Services, person: PersonContext, is_available: Callable[[int], bool]
) -> list[AvailableVisitor]:
    """The person's approved visitors whose open page says "available now" (first names and
    relationships only; attorneys and clergy only where the rules let them visit on demand)."""
    async with services.read() as session:
        rows = (
            await session.execute(
                select(Approval.id, Approval.visitor_id, Approval.relationship, Account.name)
                .join(Account, Account.id == Approval.visitor_id)
                .where(
                    Approval.person_id == person.person_id,
                    Approval.status == "approved",
                    Account.active.is_(True),
                    Account.email_verified_at.is_not(None),
                    Account.id_status == "verified",
                    Approval.professional.in_(_professions(person.rules)),
                )
                .order_by(Approval.id)
            )
        ).all()
    return [
        AvailableVisitor(approval_id, (name.split() or ["-"])[0], relationship)
        for approval_id, visitor_id, relationship, name in rows
        if is_available(visitor_id)
    ]


def _professions(rules: VisitingRules) -> Sequence[str]:
    return ("none", "attorney", "clergy") if rules.on_demand_privileged else ("none",)


async def ring_visitor(
    services: Services,
    *,
    kiosk_id: int,
    person_id: int,
    approval_id: int,
    is_available: Callable[[int], bool],
    request_id: str | None = None,
) -> IssuedVisit:
    """A resident signed in at ``kiosk_id`` rings the visitor of ``approval_id``: the visit
    takes this kiosk (it must be free for the whole span) and the visitor's open pages ring."""
    async with services.read() as session:
        approval = await session.get(Approval, approval_id)
        unit_id = await kiosk_unit(session, kiosk_id)
        person = await session.get(Person, person_id)
    if person is None or person.unit_id != unit_id:
        raise Forbidden("this person does not live in this kiosk's unit", code="not_this_unit")
    if approval is None or approval.person_id != person_id or approval.status != "approved":
        raise NotFound("no such visitor")
    if not is_available(approval.visitor_id):
        raise Conflict("this visitor is not available now", code="visitor_not_available")
    start = RingStart(person_id, approval.visitor_id, "kiosk", f"kiosk:{kiosk_id}", request_id)
    return await _book_ringing(services, start, lambda candidate: candidate == kiosk_id)
