"""Visit now at the kiosk: answering rings, and a resident ringing one of their visitors.

One ``KioskCalls`` per kiosk socket. A resident signs in (``resident_sign_in``: booking
number, PIN where the unit asks for it) and stays signed in on this socket until
``resident_sign_out``, a ring, or ``RESIDENT_IDLE_S`` without a request; meanwhile the kiosk
may list their visitors available now (``get_available``) and ring one (``ring_visitor``).
Rings of visits at this kiosk are accepted or declined with ``ring_accept``/``ring_decline``
(the PIN may come with ``ring_accept``; it is checked like ``pin_confirm``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from vvserver.domain.booking.availability_store import PersonContext
from vvserver.domain.errors import Conflict
from vvserver.domain.services import Services
from vvserver.domain.visits.on_demand import available_visitors, ring_visitor
from vvserver.domain.visits.resident_sign_in import sign_in_resident
from vvserver.domain.visits.ring_answer import Answerer, answer_ring
from vvserver.signaling.connection import Connection
from vvserver.signaling.hub import SignalingHub
from vvserver.signaling.protocol import (
    AckMessage,
    AnyClientMessage,
    AvailableRequest,
    ResidentSignInMessage,
    ResidentSignOutMessage,
    RingAcceptMessage,
    RingDeclineMessage,
    RingVisitorMessage,
)
from vvserver.signaling.ring_messages import AvailableVisitorOut, AvailableVisitorsMessage

logger = logging.getLogger(__name__)

# A signed-in resident who sends nothing for this long is signed out.
RESIDENT_IDLE_S = 120.0
MESSAGES = (
    ResidentSignInMessage,
    ResidentSignOutMessage,
    AvailableRequest,
    RingVisitorMessage,
    RingAcceptMessage,
    RingDeclineMessage,
)


@dataclass
class _Resident:
    person: PersonContext
    until: float


class KioskCalls:
    def __init__(self, hub: SignalingHub, kiosk_id: int) -> None:
        self.hub = hub
        self.services: Services = hub.services
        self.kiosk_id = kiosk_id
        self.resident: _Resident | None = None

    def handles(self, message: AnyClientMessage) -> bool:
        return isinstance(message, MESSAGES)

    async def handle(self, conn: Connection, message: AnyClientMessage) -> None:
        if isinstance(message, ResidentSignInMessage):
            person = await sign_in_resident(
                self.services,
                kiosk_id=self.kiosk_id,
                booking_number=message.booking_number,
                pin=message.pin,
                request_id=conn.request_id,
            )
            self.resident = _Resident(person, time.monotonic() + RESIDENT_IDLE_S)
            logger.info("kiosk %s: resident %s signed in", self.kiosk_id, person.person_id)
            await conn.send(await self._available())
        elif isinstance(message, ResidentSignOutMessage):
            self.resident = None
            await conn.send(AckMessage(ref=message.type))
        elif isinstance(message, AvailableRequest):
            await conn.send(await self._available())
        elif isinstance(message, RingVisitorMessage):
            resident = self._signed_in()
            issued = await ring_visitor(
                self.services,
                kiosk_id=self.kiosk_id,
                person_id=resident.person.person_id,
                approval_id=message.approval_id,
                is_available=self.services.available_visitors.is_available,
                request_id=conn.request_id,
            )
            self.resident = None  # the ring (and the call) is theirs now; sign in again after
            await conn.send(AckMessage(ref=message.type, visit_id=issued.view.visit.id))
        elif isinstance(message, RingAcceptMessage | RingDeclineMessage):
            await self._answer(conn, message)

    async def _answer(
        self, conn: Connection, message: RingAcceptMessage | RingDeclineMessage
    ) -> None:
        accept = isinstance(message, RingAcceptMessage)
        pin = message.pin if isinstance(message, RingAcceptMessage) else None
        if pin is not None and await self.hub.pins.still_required(message.visit_id):
            await self.hub.pins.confirm(
                message.visit_id, self.kiosk_id, pin, request_id=conn.request_id
            )
        answerer = Answerer("kiosk", self.kiosk_id, conn.request_id)
        await answer_ring(self.services, message.visit_id, answerer, accept=accept)
        await conn.send(AckMessage(ref=message.type, visit_id=message.visit_id))

    def _signed_in(self) -> _Resident:
        resident = self.resident
        if resident is None or time.monotonic() >= resident.until:
            self.resident = None
            raise Conflict("sign in first (resident_sign_in)", code="resident_signed_out")
        resident.until = time.monotonic() + RESIDENT_IDLE_S
        return resident

    async def _available(self) -> AvailableVisitorsMessage:
        person = self._signed_in().person
        found = await available_visitors(
            self.services, person, self.services.available_visitors.is_available
        )
        return AvailableVisitorsMessage(
            person_id=person.person_id,
            person_name=person.full_name,
            minutes=person.rules.on_demand_minutes,
            visitors=[
                AvailableVisitorOut(
                    approval_id=v.approval_id, first_name=v.first_name, relationship=v.relationship
                )
                for v in found
            ],
        )
