"""The free make-up visit for a credited visit (see ``credit``).

Booked with every booking rule except the weekly limits: the make-up carries
``makeup_for_visit_id``, so it is not counted and the limits do not refuse it. One make-up per
credited visit: a rebooking is refused while a make-up that is not cancelled exists (cancelling
the make-up gives the credit back). Locks in booking's order: person and visitor, then the
credited visit, then the unit's kiosks.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vvserver.db.models import Visit
from vvserver.domain.booking.book import Minor, _lock_parties, _place
from vvserver.domain.booking.credit import CREDITED_END_STATES
from vvserver.domain.errors import Conflict, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import IssuedVisit, locked_visit

logger = logging.getLogger(__name__)


async def rebook_credited_visit(
    services: Services, *, visitor_id: int, visit_id: int, start: datetime, actor: str
) -> IssuedVisit:
    """Book ``start`` as the make-up of the visitor's credited visit ``visit_id``."""
    now = services.clock.now()
    try:
        async with services.write() as session:
            found = await session.get(Visit, visit_id)
            if found is None or found.visitor_id != visitor_id:
                raise NotFound("no such visit")
            person, standing = await _lock_parties(session, found.person_id, visitor_id)
            credited = await locked_visit(session, visit_id)
            if not credited.credit_flag or credited.state not in CREDITED_END_STATES:
                raise Conflict(
                    "only a visit credited by the facility can be rebooked for free",
                    code="no_credit",
                )
            makeup = await session.scalar(
                select(Visit.id)
                .where(
                    Visit.visitor_id == visitor_id,
                    Visit.makeup_for_visit_id == visit_id,
                    Visit.state != "cancelled",
                )
                .limit(1)
            )
            if makeup is not None:
                raise Conflict(
                    f"this visit has already been rebooked as visit {makeup}",
                    code="already_rebooked",
                )
            minors = [
                Minor(str(m["name"]), date.fromisoformat(str(m["date_of_birth"])))
                for m in credited.minors
            ]
            issued = await _place(
                session, services, now, person, standing, start, minors, actor, makeup_for=visit_id
            )
    except IntegrityError as exc:
        raise Conflict(
            "that slot has just been taken; pick another one", code="slot_taken"
        ) from exc
    logger.info("visit %s rebooked as make-up visit %s", visit_id, issued.view.visit.id)
    return issued
