"""Booking and rescheduling visits (cancelling one is in ``cancellation``).

Every change runs in one ``services.write()`` transaction. On PostgreSQL the rows a booking
decides on are locked in one global order, so concurrent bookings never deadlock: the person row
and the visitor's account row (one statement, in that order), then every kiosk row of the
person's unit (by id), then (when rescheduling) the old visit. On SQLite the write transaction is
serialised as a whole. The unique partial index ``uq_visits_kiosk_start_active`` is the backstop:
a duplicate kiosk/start answers 409 ``slot_taken``, never 500.

The booking transaction bounds booking throughput (SQLite runs one at a time), so its reads and
writes are prepared Core statements (``db.lean``): two selects, then the visit, its creation
transition and the confirmation e-mail, one driver round trip each.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Visit, VisitTransition
from vvserver.db.prepared import Prepared
from vvserver.db.wakeups import note_change
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.booking.availability import first_free_kiosk, grid_slot_at
from vvserver.domain.booking.availability_store import (
    PersonContext,
    VisitorStanding,
    load_parties,
    load_query,
    lock_unit_kiosks,
)
from vvserver.domain.booking.confirmation_mail import queue_confirmation
from vvserver.domain.booking.slot_checks import Minor, check_minors, slot_refusal
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import (
    IssuedVisit,
    issue_join_token,
    join_url,
    locked_visit,
    reissue_join_link,
    verify_join,
)
from vvserver.domain.visits.states import transition
from vvserver.domain.visits.views import VisitView, load_view

logger = logging.getLogger(__name__)


async def book_visit(
    services: Services,
    *,
    visitor_id: int,
    person_id: int,
    start: datetime,
    minors: list[Minor],
    actor: str,
) -> IssuedVisit:
    """Book the slot starting at ``start`` for the visitor and the person (lowest free kiosk)."""
    now = services.clock.now()
    try:
        async with services.write() as session:
            person, standing = await _lock_parties(session, person_id, visitor_id)
            issued = await _place(
                session, services, now, person, standing, start, minors, actor, makeup_for=None
            )
    except IntegrityError as exc:
        raise Conflict(
            "that slot has just been taken; pick another one", code="slot_taken"
        ) from exc
    logger.info("visit %s booked by %s", issued.view.visit.id, actor)
    return issued


async def book_in_transaction(
    session: AsyncSession,
    services: Services,
    now: datetime,
    *,
    visitor_id: int,
    person_id: int,
    start: datetime,
    minors: list[Minor],
    actor: str,
) -> IssuedVisit:
    """``book_visit`` inside the caller's write transaction (the standing weekly visits' job).

    The same locks, rules, insert and confirmation e-mail, in a SAVEPOINT: a refusal (a
    ``DomainError``) or a taken slot (409 ``slot_taken``) leaves the caller's transaction usable.
    """
    try:
        async with session.begin_nested():
            person, standing = await _lock_parties(session, person_id, visitor_id)
            return await _place(
                session, services, now, person, standing, start, minors, actor, makeup_for=None
            )
    except IntegrityError as exc:
        raise Conflict(
            "that slot has just been taken; pick another one", code="slot_taken"
        ) from exc


async def reschedule_visit(
    services: Services,
    *,
    principal: Principal,
    visit_id: int,
    start: datetime,
    reason: str | None = None,
    audit: AuditRecord | None = None,
) -> IssuedVisit:
    """Cancel the visit (reason "rescheduled") and book ``start`` in its place.

    The visitor may do this until ``cancel_lead_minutes`` before the start; staff in scope at any
    time, with a reason that the visitor is told. One transaction: if the new slot cannot be
    booked nothing changes. The old visit is cancelled before the new slot is checked, so it
    neither blocks the slot nor counts twice in the week; its join link stops working.
    """
    now = services.clock.now()
    actor = principal.actor
    try:
        async with services.write() as session:
            found = await session.get(Visit, visit_id)
            if found is None:
                raise NotFound("no such visit")
            if principal.role == "visitor":
                if found.visitor_id != principal.account_id:
                    raise NotFound("no such visit")
            else:
                principal.ensure_facility(
                    found.facility_id, (await load_view(session, found)).agency_id
                )
                if not reason:
                    raise InvalidInput(
                        "staff must give a reason to reschedule", code="reason_required"
                    )
            person, standing = await _lock_parties(session, found.person_id, found.visitor_id)
            old = await locked_visit(session, visit_id)
            if old.state not in ACTIVE_VISIT_STATES:
                raise Conflict(f"this visit is {old.state}", code="visit_not_active")
            lead = person.rules.cancel_lead_minutes
            if principal.role == "visitor" and now > old.start_at - timedelta(minutes=lead):
                raise Conflict(
                    f"visits can be changed until {lead} minutes before they start",
                    code="too_late_to_reschedule",
                )
            transition(
                session,
                old,
                "cancelled",
                actor=actor,
                reason=f"rescheduled by the facility: {reason}" if reason else "rescheduled",
                now=now,
            )
            old.join_token_hash = None
            await session.flush()
            minors = [
                Minor(str(m["name"]), date.fromisoformat(str(m["date_of_birth"])))
                for m in old.minors
            ]
            issued = await _place(
                session,
                services,
                now,
                person,
                standing,
                start,
                minors,
                actor,
                makeup_for=old.makeup_for_visit_id,
                replaces=old.id,
                staff_reason=reason if principal.is_staff else None,
            )
            if audit is not None:
                await services.audit.append(session, audit, now)
    except IntegrityError as exc:
        raise Conflict(
            "that slot has just been taken; pick another one", code="slot_taken"
        ) from exc
    logger.info("visit %s rescheduled to visit %s by %s", visit_id, issued.view.visit.id, actor)
    return issued


async def _lock_parties(
    session: AsyncSession, person_id: int, visitor_id: int
) -> tuple[PersonContext, VisitorStanding]:
    """Lock the person and the visitor; check the visitor may book visits with the person."""
    found = await load_parties(session, person_id, visitor_id, lock=True)
    if found is not None and not found[1].verified:
        raise Forbidden(
            "confirm your e-mail address and have your ID checked before booking",
            code="visitor_not_verified",
        )
    if found is None or not found[1].approved:
        # The same answer whether or not the person exists, so ids do not leak.
        raise Forbidden("you are not on this person's approved visitor list", code="not_approved")
    return found


_VISITS = cast(Table, Visit.__table__)
_VISIT_COLUMNS = [c for c in _VISITS.columns if c.name != "id"]
_INSERT_VISIT = Prepared(
    insert(_VISITS)
    .values({c.name: bindparam(c.name, type_=c.type) for c in _VISIT_COLUMNS})
    .returning(_VISITS.c.id)
)
_INSERT_VISIT_WITH_ID = Prepared(
    insert(_VISITS).values({c.name: bindparam(c.name, type_=c.type) for c in _VISITS.columns})
)
_SET_JOIN_HASH = Prepared(
    update(_VISITS)
    .where(_VISITS.c.id == bindparam("b_id"))
    .values(join_token_hash=bindparam("b_hash", type_=_VISITS.c.join_token_hash.type))
)
_TRANSITIONS = cast(Table, VisitTransition.__table__)
_INSERT_TRANSITION = Prepared(
    insert(_TRANSITIONS).values(
        {c.name: bindparam(c.name, type_=c.type) for c in _TRANSITIONS.columns if c.name != "id"}
    )
)


async def _insert_visit(
    session: AsyncSession, services: Services, visit: Visit, last_id: int, rules: VisitingRules
) -> str:
    """Insert ``visit`` (a taken kiosk/start fails here, on the unique index) with the hash of
    its join token; set its id; return the token.

    The token names the visit id. SQLite writers are serialised (``BEGIN IMMEDIATE``), so the
    next id is known and the row is written once; elsewhere the database picks the id and the
    hash follows in an update.
    """

    def token_for(visit_id: int) -> tuple[str, str]:
        return issue_join_token(
            services.secret,
            visit_id=visit_id,
            visitor_id=visit.visitor_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
            join_window_minutes=rules.join_window_minutes,
            issued_at=visit.created_at,
        )

    if session.get_bind().dialect.name == "sqlite":
        visit.id = last_id + 1
        token, visit.join_token_hash = token_for(visit.id)
        await _INSERT_VISIT_WITH_ID.rows(
            session, id=visit.id, **{c.name: getattr(visit, c.key) for c in _VISIT_COLUMNS}
        )
        return token
    row = await _INSERT_VISIT.first(
        session, **{c.name: getattr(visit, c.key) for c in _VISIT_COLUMNS}
    )
    assert row is not None
    visit.id = int(row[0])
    token, visit.join_token_hash = token_for(visit.id)
    await _SET_JOIN_HASH.rows(session, b_id=visit.id, b_hash=visit.join_token_hash)
    return token


async def _place(
    session: AsyncSession,
    services: Services,
    now: datetime,
    person: PersonContext,
    standing: VisitorStanding,
    start: datetime,
    minors: list[Minor],
    actor: str,
    *,
    makeup_for: int | None,
    replaces: int | None = None,
    staff_reason: str | None = None,
) -> IssuedVisit:
    """Check every rule for ``start`` and create the visit on the lowest free kiosk."""
    rules, tz = person.rules, person.tz
    if standing.banned_at(start):
        raise Forbidden("you may not visit at this facility at that time", code="visitor_banned")
    slot = grid_slot_at(rules, tz, start)
    if slot is None:
        raise InvalidInput(
            "that time is not a visit slot; pick one from the availability list",
            code="not_a_slot",
        )
    day = slot.start.astimezone(tz).date()
    check_minors(minors, day)
    await lock_unit_kiosks(session, person.unit_id)
    facts = await load_query(
        session,
        person,
        now=now,
        first_day=day,
        last_day=day,
        visitor_id=standing.visitor_id,
        only=slot,
    )
    q = facts.query
    if makeup_for is not None:
        # A make-up for a credited visit does not count, so the weekly limits cannot refuse it.
        q = dataclasses.replace(q, person_week_counts={}, visitor_week_counts=None)
    refusal = slot_refusal(q, slot, person.status)
    if refusal is not None:
        code, message = refusal
        raise Conflict(message, code=code)
    kiosk_id = first_free_kiosk(slot, q.kiosk_ids, q.kiosk_busy, rules.buffer_minutes)
    assert kiosk_id is not None  # slot_refusal said a kiosk is free
    visit = Visit(
        facility_id=person.facility_id,
        unit_id=person.unit_id,
        kiosk_id=kiosk_id,
        person_id=person.person_id,
        visitor_id=standing.visitor_id,
        start_at=slot.start,
        end_at=slot.end,
        state="scheduled",
        privileged=standing.privileged,
        minors=[{"name": m.name, "date_of_birth": m.date_of_birth.isoformat()} for m in minors],
        makeup_for_visit_id=makeup_for,
        join_token_hash=None,
        end_reason=None,
        counts_toward_limit=True,
        missing_side=None,
        visitor_connected_s=0.0,
        kiosk_connected_s=0.0,
        visitor_lost_s=0.0,
        kiosk_lost_s=0.0,
        visitor_joined_at=None,
        kiosk_joined_at=None,
        ledger_at=None,
        visitor_in_call=False,
        kiosk_in_call=False,
        credit_flag=False,
        reminder_sent_at=None,
        start_pushed_at=None,
        created_at=now,
        updated_at=now,
        on_demand=None,
        ring_until=None,
        limit_exempt=False,
    )
    token = await _insert_visit(session, services, visit, facts.last_visit_id, rules)
    note_change(session, "scheduler")  # a prepared insert: the ORM flush hook cannot see it
    await _INSERT_TRANSITION.rows(
        session,
        visit_id=visit.id,
        at=now,
        from_state=None,
        to_state="scheduled",
        actor=actor,
        reason=f"rescheduled from visit {replaces}" if replaces is not None else "booked",
    )
    view = VisitView(
        visit=visit,
        agency_id=person.agency_id,
        person_name=person.full_name,
        facility_name=person.facility_name,
        timezone=person.timezone,
        unit_name=person.unit_name,
        kiosk_name=facts.kiosk_names[kiosk_id],
        visitor_name=standing.name,
        visitor_email=standing.email,
        rules=rules,
        visitor_language=standing.language,
    )
    link = join_url(services, token)
    await queue_confirmation(session, services, now, view, link, replaces, staff_reason)
    return IssuedVisit(view=view, join_url=link)


__all__ = [
    "IssuedVisit",
    "Minor",
    "book_in_transaction",
    "book_visit",
    "reissue_join_link",
    "reschedule_visit",
    "verify_join",
]
