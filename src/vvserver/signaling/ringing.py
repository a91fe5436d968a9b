"""Visit now on the sockets: visitors' pages on standby, and rings delivered to both sides.

* Standby: a visitor's socket opened with the session cookie and no visit (``/ws/visitor``
  without ``?visit_id=``) is the visitor's open page. It says "available now" with
  ``availability``; while it does, ``services.available_visitors`` counts it (cluster-wide:
  the socket counts of every node), so a kiosk's resident may ring the visitor.
* Rings: a ``RingEvent`` from the bus (on every node) becomes ``ring`` for the kiosk's sockets
  and the visitor's sockets here (their visit's page, and their standby pages that are
  available), with ``direction`` incoming for the side rung and outgoing for the side that
  rang; when the ring ends both get ``ring_ended``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import cast, get_args

from sqlalchemy import select

from vvserver.db.models import Approval, Visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import RingEvent
from vvserver.domain.visits.views import VisitView, load_view
from vvserver.signaling.connection import Connection
from vvserver.signaling.ring_messages import RingEndedMessage, RingMessage, RingOutcome

logger = logging.getLogger(__name__)


class Ringing:
    """This process's standby visitor sockets, and what a ring says to whom."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._standby: dict[int, set[Connection]] = {}
        self._available: set[Connection] = set()

    # --- standby pages -------------------------------------------------------------------

    def standby_opened(self, visitor_id: int, conn: Connection) -> None:
        self._standby.setdefault(visitor_id, set()).add(conn)

    def set_available(self, visitor_id: int, conn: Connection, available: bool) -> None:
        if available and conn not in self._available:
            self._available.add(conn)
            self.services.available_visitors.available(visitor_id)
            logger.info("visitor %s: not available -> available now", visitor_id)
        elif not available and conn in self._available:
            self._available.discard(conn)
            self.services.available_visitors.unavailable(visitor_id)
            logger.info("visitor %s: available now -> not available", visitor_id)

    def standby_closed(self, visitor_id: int, conn: Connection) -> None:
        self.set_available(visitor_id, conn, False)
        conns = self._standby.get(visitor_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._standby[visitor_id]

    def is_available(self, conn: Connection) -> bool:
        return conn in self._available

    # --- rings ---------------------------------------------------------------------------

    async def deliver(
        self,
        event: RingEvent,
        kiosk_conns: Iterable[Connection],
        visit_conns: Iterable[Connection],
    ) -> None:
        """Tell this process's sockets of both sides about the ring (or its end)."""
        standby = self._standby.get(event.visitor_id, set())
        if event.state != "ringing":
            ended = RingEndedMessage(visit_id=event.visit_id, outcome=_outcome(event.state))
            for conn in {*kiosk_conns, *visit_conns, *standby}:
                await conn.send(ended)
            return
        view, relationship = await self._details(event.visit_id)
        if view is None:
            return
        pages = {*visit_conns, *(conn for conn in standby if conn in self._available)}
        for side, conns in (("kiosk", list(kiosk_conns)), ("visitor", list(pages))):
            if not conns:
                continue
            message = _ring_message(event, view, relationship, side, self.services)
            for conn in conns:
                await conn.send(message)

    async def _details(self, visit_id: int) -> tuple[VisitView | None, str]:
        async with self.services.read() as session:
            visit = await session.get(Visit, visit_id)
            if visit is None or visit.state != "ringing" or visit.ring_until is None:
                return None, ""  # answered or ended before this node got to it
            view = await load_view(session, visit)
            relationship = await session.scalar(
                select(Approval.relationship).where(
                    Approval.person_id == visit.person_id, Approval.visitor_id == visit.visitor_id
                )
            )
        return view, relationship or ""


def _outcome(state: str) -> RingOutcome:
    for outcome in get_args(RingOutcome):
        if outcome == state:
            return cast(RingOutcome, outcome)
    return "declined"


def _ring_message(
    event: RingEvent, view: VisitView, relationship: str, side: str, services: Services
) -> RingMessage:
    visit = view.visit
    assert visit.ring_until is not None
    return RingMessage(
        visit_id=visit.id,
        direction="outgoing" if side == event.started_by else "incoming",
        started_by="kiosk" if event.started_by == "kiosk" else "visitor",
        ring_until=visit.ring_until,
        server_time=services.clock.now(),
        minutes=view.rules.on_demand_minutes,
        person_name=view.person_name,
        facility_name=view.facility_name,
        visitor_first_name=(view.visitor_name.split() or ["-"])[0],
        relationship=relationship,
        privileged=visit.privileged,
        pin_required=side == "kiosk" and view.rules.kiosk_pin_required,
    )
