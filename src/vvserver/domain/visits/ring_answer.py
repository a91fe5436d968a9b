"""Answering a Visit-now ring: accept, decline or withdraw it; end it when nobody answers.

The side rung (the kiosk for a visitor's "Visit now", the visitor for a resident's call)
accepts or declines; the side that rang may only withdraw. Accepting moves the visit from
``ringing`` to ``ready`` with its full length from the moment of the answer (the ring time
was reserved for that), marks its start as pushed and announces it (``VisitStartEvent``): the
kiosk joins at once, like a booked visit at its slot time. Declining, withdrawing and a ring
nobody answered by ``ring_until`` end the visit as ``declined``: not a no-show, not counted
toward any limit. Each answer is audited and stored as a visit transition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from vvserver.db.models import Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitStartEvent, publish_after_commit
from vvserver.domain.visits.join_links import locked_visit
from vvserver.domain.visits.kiosk_day import pin_required_for
from vvserver.domain.visits.on_demand import ring_event
from vvserver.domain.visits.states import transition

logger = logging.getLogger(__name__)

Side = Literal["visitor", "kiosk"]
MISSED_REASON = "not answered in time"


@dataclass(frozen=True, slots=True)
class Answerer:
    """Who answers: the kiosk (by id) or the visitor (by account id), and the request."""

    side: Side
    party_id: int
    request_id: str | None = None

    @property
    def actor(self) -> str:
        return f"kiosk:{self.party_id}" if self.side == "kiosk" else f"visitor:{self.party_id}"

    def owns(self, visit: Visit) -> bool:
        if self.side == "kiosk":
            return visit.kiosk_id == self.party_id
        return visit.visitor_id == self.party_id


def _callee(visit: Visit) -> Side:
    return "kiosk" if visit.on_demand == "visitor" else "visitor"


def _who(side: Side) -> str:
    return "the resident" if side == "kiosk" else "the visitor"


async def answer_ring(
    services: Services, visit_id: int, answerer: Answerer, *, accept: bool
) -> Visit:
    """Accept or decline (withdraw, for the side that rang) the ring of ``visit_id``.

    NotFound for a visit that is not this side's; Conflict ``ring_over`` once the ring has
    ended (answered, declined, missed); Forbidden ``not_the_callee`` when the side that rang
    tries to accept; Forbidden ``pin_required`` when the kiosk accepts before the PIN where
    the unit asks for it.
    """
    action = "visit.ring.accept" if accept else "visit.ring.decline"
    async with services.write() as session:
        now = services.clock.now()
        try:
            visit = await locked_visit(session, visit_id)
        except NotFound:
            visit = None
        if visit is None or not answerer.owns(visit) or visit.on_demand is None:
            raise NotFound("no such ring")
        if visit.state != "ringing":
            raise Conflict(f"this ring has ended (the visit is {visit.state})", code="ring_over")
        callee = _callee(visit)
        if accept and answerer.side != callee:
            raise Forbidden("only the side that is rung can accept", code="not_the_callee")
        if (
            accept
            and answerer.side == "kiosk"
            and await pin_required_for(session, visit)
            and not (await services.pin_tries.get(visit.id)).confirmed
        ):
            raise Forbidden("the person's PIN is required first", code="pin_required")
        if accept:
            length = visit.end_at - (visit.ring_until or visit.start_at)
            visit.start_at = now
            visit.end_at = now + length
            visit.start_pushed_at = now
            state, outcome = "ready", "accepted"
            reason = f"answered by {_who(answerer.side)}"
        else:
            state = "declined"
            outcome = "declined" if answerer.side == callee else "withdrawn"
            reason = f"{outcome} by {_who(answerer.side)}"
        visit.ring_until = None
        transition(session, visit, state, actor=answerer.actor, reason=reason, now=now)
        await services.audit.append(
            session,
            AuditRecord(
                actor=answerer.actor,
                action=action,
                outcome="success",
                target=f"visit:{visit.id}",
                request_id=answerer.request_id,
                component="signaling",
                details={"outcome": outcome},
            ),
            now,
        )
        publish_after_commit(session, ring_event(visit, outcome))
        if accept:
            publish_after_commit(
                session,
                VisitStartEvent(
                    visit_id=visit.id,
                    facility_id=visit.facility_id,
                    unit_id=visit.unit_id,
                    kiosk_id=visit.kiosk_id,
                    start_at=visit.start_at,
                    end_at=visit.end_at,
                ),
            )
    logger.info("visit %s: ring %s by %s", visit.id, outcome, answerer.actor)
    return visit


async def end_missed_rings(services: Services, now: datetime, actor: str) -> list[int]:
    """Rings nobody answered by ``ring_until``: ``ringing -> declined`` (one transaction each,
    the row locked and the condition checked again there); the ids ended."""
    async with services.read() as session:
        ids = list(
            (
                await session.scalars(
                    select(Visit.id)
                    .where(Visit.state == "ringing", Visit.ring_until <= now)
                    .order_by(Visit.ring_until)
                    .limit(200)
                )
            ).all()
        )
    ended: list[int] = []
    for visit_id in ids:
        async with services.write() as session:
            visit = await session.scalar(
                select(Visit).where(Visit.id == visit_id).with_for_update(skip_locked=True)
            )
            if (
                visit is None
                or visit.state != "ringing"
                or visit.ring_until is None
                or visit.ring_until > now
            ):
                continue
            visit.ring_until = None
            transition(session, visit, "declined", actor=actor, reason=MISSED_REASON, now=now)
            await services.audit.append(
                session,
                AuditRecord(
                    actor=actor,
                    action="visit.ring.missed",
                    outcome="success",
                    target=f"visit:{visit.id}",
                    component="scheduler",
                ),
                now,
            )
            publish_after_commit(session, ring_event(visit, "missed"))
        ended.append(visit_id)
        logger.info("visit %s: ring not answered; ringing -> declined", visit_id)
    return ended
