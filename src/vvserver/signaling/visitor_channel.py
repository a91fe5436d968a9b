"""``/ws/visitor``: a visitor's socket, bound to one visit (or on standby for Visit now).

Credentials: the join link's token (``?token=`` or a first ``auth`` message), or the visitor's
session cookie with ``?visit_id=``. The visitor gets the visit's status (waiting room, server
clock) on connect, when the slot starts and every ``STATUS_EVERY_S``, and joins the call with
an ``offer``. A dropped socket does not leave the call: only ``leave`` does.

With the session cookie and no ``?visit_id=`` the socket is the visitor's open page on
standby (``ringing``): it may switch "available now" on and off (``availability``), gets the
rings of residents who call, and answers them (``ring_accept``, ``ring_decline``). Either kind
of socket answers the rings of its visitor's on-demand visits.
"""

from __future__ import annotations

import logging
import time

from vvserver.app_keys import HUB
from vvserver.db.models import Person, Visit
from vvserver.domain.accounts.credentials import session_cookie_name, session_principal
from vvserver.domain.booking.credit import connected_seconds, lost_seconds
from vvserver.domain.errors import DomainError, NotFound
from vvserver.domain.ids import parse_id
from vvserver.domain.visits.chat import messages_of_visit, post_message
from vvserver.domain.visits.join_links import verify_join
from vvserver.domain.visits.ring_answer import Answerer, answer_ring
from vvserver.signaling.chat_feed import ChatFeed
from vvserver.signaling.connection import Connection
from vvserver.signaling.hub import SignalingHub
from vvserver.signaling.ice import client_ice_servers
from vvserver.signaling.participants import ParticipantChannel
from vvserver.signaling.protocol import (
    MAX_TOKEN_CHARS,
    AckMessage,
    AnyClientMessage,
    AuthMessage,
    AvailabilityMessage,
    ChatMessage,
    ProtocolError,
    RingAcceptMessage,
    RingDeclineMessage,
    VisitStatusMessage,
    WelcomeMessage,
)
from vvserver.signaling.ring_messages import AvailabilityStateMessage
from vvserver.signaling.socket_loop import AuthRefused

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 30.0


async def send_visit_status(hub: SignalingHub, conn: Connection, visit_id: int) -> None:
    services = hub.services
    async with services.read() as session:
        visit = await session.get(Visit, visit_id)
        person = None if visit is None else await session.get(Person, visit.person_id)
    if visit is None:
        return
    now = services.clock.now()
    await conn.send(
        VisitStatusMessage(
            visit_id=visit.id,
            state=visit.state,
            start_at=visit.start_at,
            end_at=visit.end_at,
            server_time=now,
            seconds_to_start=max(0, int((visit.start_at - now).total_seconds())),
            seconds_left=max(0, int((visit.end_at - max(now, visit.start_at)).total_seconds())),
            kiosk_online=hub.kiosk_online(visit.kiosk_id),
            end_reason=visit.end_reason,
            privileged=visit.privileged,
            person_first_name=person.first_name if person is not None else "",
            connected_seconds=round(connected_seconds(visit)),
            lost_seconds=round(lost_seconds(visit)),
            visitor_lost_seconds=round(visit.visitor_lost_s),
            kiosk_lost_seconds=round(visit.kiosk_lost_s),
            credit_flag=visit.credit_flag,
        )
    )


class VisitorChannel(ParticipantChannel):
    role = "visitor"
    participant = "visitor"
    visit_id: int | None = None
    next_status: float = 0.0
    chat: ChatFeed | None = None
    cookie: str | None = None  # set when the socket authenticated with the session cookie
    visitor_id: int | None = None
    standby: bool = False  # the visitor's page without a visit (Visit now)

    async def _by_token(self, token: str) -> None:
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthRefused("join_link_invalid", "this join link is not valid")
        try:
            visit = await verify_join(self.services, token)
        except DomainError as exc:
            raise AuthRefused(exc.code, exc.message) from None
        self.visit_id, self.visitor_id = visit.id, visit.visitor_id

    async def authenticate_upgrade(self) -> bool:
        token = self.request.query.get("token")
        if token:
            await self._by_token(token)
            return True
        cookie = self.request.cookies.get(session_cookie_name(self.services.settings))
        if not cookie or len(cookie) > 128:
            return False
        principal = await session_principal(self.services, cookie)
        if principal is None:
            raise AuthRefused("session_expired", "sign in again")
        if principal.role != "visitor":
            raise AuthRefused("wrong_role", "this socket is for visitors")
        self.cookie, self.visitor_id = cookie, principal.account_id
        raw = self.request.query.get("visit_id")
        visit_id = parse_id(raw or "")
        if raw is None:
            self.standby = True
        elif visit_id is None:
            raise AuthRefused("visit_required", "?visit_id= names one of your visits")
        else:
            async with self.services.read() as session:
                visit = await session.get(Visit, visit_id)
            if visit is None or visit.visitor_id != principal.account_id:
                raise AuthRefused("not_found", "no such visit")
            self.visit_id = visit.id
        self.account_id, self.session_hash = principal.account_id, principal.session_hash
        return True

    async def check_credentials(self) -> None:
        """A socket opened with the session cookie lives only as long as that session."""
        if self.cookie is None:
            return  # a join link: it holds for its visit's window
        principal = await session_principal(self.services, self.cookie)
        if principal is None or principal.account_id != self.account_id:
            raise AuthRefused("session_expired", "sign in again")

    async def authenticate_message(self, message: AuthMessage) -> None:
        await self._by_token(message.token)

    async def allowed_visit(self, visit_id: int | None) -> int:
        if self.standby:
            raise ProtocolError("visit_required", "open the socket with ?visit_id= to join")
        if self.visit_id is None or (visit_id is not None and visit_id != self.visit_id):
            raise NotFound("no such visit")
        return self.visit_id

    async def opened(self, conn: Connection) -> None:
        hub = self.app[HUB]
        if self.standby:
            assert self.visitor_id is not None
            await conn.send(
                WelcomeMessage(
                    role="visitor",
                    server_time=self.services.clock.now(),
                    ice_servers=[],
                    heartbeat_s=self.heartbeat_s,
                )
            )
            hub.ringing.standby_opened(self.visitor_id, conn)
            return
        assert self.visit_id is not None
        self.call_coming()
        await conn.send(
            WelcomeMessage(
                role="visitor",
                server_time=self.services.clock.now(),
                ice_servers=client_ice_servers(
                    self.services.settings, f"visit-{self.visit_id}", self.services.clock.now()
                ),
                heartbeat_s=self.heartbeat_s,
                connect_timeout_s=self.services.settings.media_connect_timeout_s,
                media_sessions=self.media_sessions([self.visit_id]),
            )
        )
        hub.visitor_connected(self.visit_id, conn)
        self.chat = ChatFeed(hub, self.services, conn, messages_of_visit(self.visit_id))
        await self.chat.start()
        await send_visit_status(hub, conn, self.visit_id)
        self.next_status = time.monotonic() + STATUS_EVERY_S

    async def handle_other(self, conn: Connection, message: AnyClientMessage) -> None:
        if isinstance(message, ChatMessage):
            visit_id = await self.allowed_visit(message.visit_id)
            await post_message(self.services, visit_id, "visitor", message.text)
            return
        if isinstance(message, AvailabilityMessage) and self.standby:
            assert self.visitor_id is not None
            self.app[HUB].ringing.set_available(self.visitor_id, conn, message.available)
            await conn.send(AvailabilityStateMessage(available=message.available))
            return
        if isinstance(message, RingAcceptMessage | RingDeclineMessage):
            await self._answer(conn, message)
            return
        await super().handle_other(conn, message)

    async def _answer(
        self, conn: Connection, message: RingAcceptMessage | RingDeclineMessage
    ) -> None:
        """Accept or decline (withdraw) a ring of this visitor's on-demand visit."""
        accept = isinstance(message, RingAcceptMessage)
        if isinstance(message, RingAcceptMessage) and message.pin is not None:
            raise ProtocolError("invalid_message", "pin: only a kiosk sends a PIN")
        if not self.standby and message.visit_id != self.visit_id:
            raise NotFound("no such ring")
        assert self.visitor_id is not None
        answerer = Answerer("visitor", self.visitor_id, conn.request_id)
        await answer_ring(self.services, message.visit_id, answerer, accept=accept)
        await conn.send(AckMessage(ref=message.type, visit_id=message.visit_id))

    def next_tick(self) -> float | None:
        pending = super().next_tick()
        if self.visit_id is None:
            return pending  # standby: no visit status to send
        return self.next_status if pending is None else min(pending, self.next_status)

    async def tick(self, conn: Connection) -> None:
        await super().tick(conn)
        if self.visit_id is not None and time.monotonic() >= self.next_status:
            self.next_status = time.monotonic() + STATUS_EVERY_S
            await send_visit_status(self.app[HUB], conn, self.visit_id)

    async def closed(self, conn: Connection) -> None:
        if self.standby and self.visitor_id is not None:
            self.app[HUB].ringing.standby_closed(self.visitor_id, conn)
        if self.chat is not None:
            self.chat.stop()
        if self.visit_id is not None:
            self.app[HUB].visitor_disconnected(self.visit_id, conn)
        if self.chat is not None:
            await self.chat.close()
