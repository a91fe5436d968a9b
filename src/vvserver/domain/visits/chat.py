"""In-call text chat (for deaf and hard-of-hearing visitors): stored with the visit.

The visitor and the kiosk may send while the visit is live. Each message is stored (it is
part of the visit's record, like the recording) and then delivered from the store to the
sockets that follow the visit (``vvserver.signaling.chat_feed``). The visitor of the visit,
its kiosk and staff in scope can read a visit's messages; staff never read those of a
privileged visit (they are not monitored), and every staff read is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, func, select

from vvserver.db.models import Facility, Visit, VisitMessage
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import Caller, reachable_facility_ids
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import ChatPostedEvent

logger = logging.getLogger(__name__)

MAX_CHAT_CHARS = 1000
MAX_LISTED = 5000  # a visit of a few hours holds far fewer
Sender = Literal["visitor", "kiosk"]


@dataclass(frozen=True, slots=True)
class ChatLine:
    id: int
    visit_id: int
    sender: Sender
    text: str
    at_iso: str


def _line(message: VisitMessage) -> ChatLine:
    sender: Sender = "kiosk" if message.sender == "kiosk" else "visitor"
    return ChatLine(message.id, message.visit_id, sender, message.text, message.at.isoformat())


async def post_message(services: Services, visit_id: int, sender: Sender, text: str) -> ChatLine:
    """Store one message of a live visit (the caller has checked it may speak in the visit)."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > MAX_CHAT_CHARS:
        raise InvalidInput(f"a message is 1 to {MAX_CHAT_CHARS} characters", code="invalid_text")
    async with services.write() as session:
        visit = await session.get(Visit, visit_id)
        if visit is None:
            raise NotFound("no such visit")
        if visit.state != "live":
            raise Conflict("chat is open while the visit is live", code="visit_not_live")
        message = VisitMessage(
            visit_id=visit.id,
            facility_id=visit.facility_id,
            sender=sender,
            text=cleaned,
            at=services.clock.now(),
        )
        session.add(message)
        await session.flush()
        line = _line(message)
    logger.info("visit %s: chat message %s from %s", visit_id, line.id, sender)
    services.events.publish(ChatPostedEvent(visit_id))  # the feeds (any node's) send it
    return line


async def live_visit_of_kiosk(services: Services, kiosk_id: int) -> int:
    """The visit this kiosk is in now (a kiosk holds one call at a time)."""
    async with services.read() as session:
        visit_id = await session.scalar(
            select(Visit.id)
            .where(Visit.kiosk_id == kiosk_id, Visit.state == "live")
            .order_by(Visit.start_at.desc())
            .limit(1)
        )
    if visit_id is None:
        raise Conflict("chat is open while the visit is live", code="visit_not_live")
    return int(visit_id)


async def visit_messages(services: Services, caller: Caller, visit_id: int) -> list[ChatLine]:
    """A visit's messages in order, for its visitor, its kiosk or staff in scope."""
    principal = caller.principal
    async with services.read() as session:
        visit = await session.get(Visit, visit_id)
        if visit is None:
            raise NotFound("no such visit")
        if principal.role == "visitor":
            if visit.visitor_id != principal.account_id:
                raise NotFound("no such visit")
        elif principal.role == "kiosk":
            if visit.kiosk_id != principal.kiosk_id:
                raise NotFound("no such visit")
        else:
            facility = await session.get(Facility, visit.facility_id)
            if facility is None:
                raise NotFound("no such visit")
            principal.ensure_facility(facility.id, facility.agency_id)
        rows = list(
            await session.scalars(
                select(VisitMessage)
                .where(VisitMessage.visit_id == visit.id)
                .order_by(VisitMessage.id)
                .limit(MAX_LISTED)
            )
        )
    if principal.is_staff:
        outcome = "failure" if visit.privileged else "success"
        async with services.write() as session:
            await services.audit.append(
                session,
                caller.record(
                    "chat.read",
                    outcome=outcome,
                    target=f"visit:{visit_id}",
                    details={"code": "privileged_visit"} if visit.privileged else None,
                ),
                services.clock.now(),
            )
        if visit.privileged:
            raise Forbidden("a privileged visit is not monitored", code="privileged_visit")
    return [_line(row) for row in rows]


# --------------------------------------------------------------------------- delivery


async def latest_message_id(services: Services) -> int:
    async with services.read() as session:
        return int(await session.scalar(select(func.coalesce(func.max(VisitMessage.id), 0))) or 0)


def messages_of_visit(visit_id: int) -> Select[VisitMessage]:
    return select(VisitMessage).where(VisitMessage.visit_id == visit_id)


def messages_of_kiosk(kiosk_id: int) -> Select[VisitMessage]:
    return (
        select(VisitMessage)
        .join(Visit, Visit.id == VisitMessage.visit_id)
        .where(Visit.kiosk_id == kiosk_id)
    )


def messages_for_staff(principal: Principal) -> Select[VisitMessage]:
    """Messages of the non-privileged visits of the facilities in the staff member's scope."""
    return (
        select(VisitMessage)
        .join(Visit, Visit.id == VisitMessage.visit_id)
        .where(
            VisitMessage.facility_id.in_(reachable_facility_ids(principal)),
            Visit.privileged.is_(False),
        )
    )


async def messages_after(
    services: Services, followed: Select[VisitMessage], after_id: int, limit: int = 200
) -> list[ChatLine]:
    """New messages of ``followed`` (a select from the ``messages_*`` helpers) after an id."""
    async with services.read() as session:
        rows = await session.scalars(
            followed.where(VisitMessage.id > after_id).order_by(VisitMessage.id).limit(limit)
        )
        return [_line(row) for row in rows]
