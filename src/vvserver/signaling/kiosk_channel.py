"""``/ws/kiosk``: the kiosk's always-open socket.

Credentials: the device token, as ``Authorization: Bearer k<id>.<secret>`` on the upgrade or
in a first ``auth`` message. On connect the kiosk is online (``last_seen_at`` written, officers
see it) and gets today's schedule; at slot time it gets ``visit_start`` and joins with an
``offer``. Like every socket it gets heartbeats and is dropped when it stops answering
(``socket_loop``); ``welcome`` lists the visits whose call still holds the kiosk's media.
Where the facility requires it, the person's PIN comes first (``pin_confirm``, see
``kiosk_pin``); until then the kiosk's offer for that visit is refused with ``pin_required``.
Visit now (``kiosk_calls``): the kiosk answers rings, and a resident signed in at it may ring
one of their visitors who is available now.
"""

from __future__ import annotations

import logging

from vvserver.app_keys import HUB
from vvserver.db.models import Visit
from vvserver.domain.accounts.credentials import kiosk_principal, kiosk_token_current
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.errors import NotFound
from vvserver.domain.visits.chat import live_visit_of_kiosk, messages_of_kiosk, post_message
from vvserver.signaling.chat_feed import ChatFeed
from vvserver.signaling.connection import Connection
from vvserver.signaling.ice import client_ice_servers
from vvserver.signaling.kiosk_calls import KioskCalls
from vvserver.signaling.kiosk_schedule import kiosk_schedule
from vvserver.signaling.participants import ParticipantChannel
from vvserver.signaling.protocol import (
    AnyClientMessage,
    AuthMessage,
    ChatMessage,
    PinAcceptedMessage,
    PinConfirmMessage,
    ProtocolError,
    ScheduleMessage,
    ScheduleRequest,
    WelcomeMessage,
)
from vvserver.signaling.socket_loop import AuthRefused

logger = logging.getLogger(__name__)


class KioskChannel(ParticipantChannel):
    role = "kiosk"
    participant = "kiosk"
    kiosk_id: int | None = None
    credential_hash: str = ""
    chat: ChatFeed | None = None
    calls: KioskCalls | None = None

    async def _by_token(self, token: str) -> None:
        principal: Principal | None = await kiosk_principal(self.services, token)
        if principal is None or principal.kiosk_id is None:
            raise AuthRefused("invalid_device_token", "invalid device token")
        self.kiosk_id = principal.kiosk_id
        self.credential_hash = token_hash(token)

    async def check_credentials(self) -> None:
        """The kiosk must still be enabled and its token not replaced (rotated)."""
        assert self.kiosk_id is not None
        if not await kiosk_token_current(self.services, self.kiosk_id, self.credential_hash):
            raise AuthRefused("invalid_device_token", "this device token no longer works")

    async def authenticate_upgrade(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        if not header:
            return False
        if not header.startswith("Bearer ") or len(header) > 512:
            raise AuthRefused("invalid_device_token", "invalid device token")
        await self._by_token(header.removeprefix("Bearer ").strip())
        return True

    async def authenticate_message(self, message: AuthMessage) -> None:
        await self._by_token(message.token)

    async def allowed_visit(self, visit_id: int | None) -> int:
        if visit_id is None:
            raise ProtocolError("visit_required", "a kiosk names the visit it joins")
        async with self.services.read() as session:
            visit = await session.get(Visit, visit_id)
        if visit is None or visit.kiosk_id != self.kiosk_id:
            raise NotFound("no such visit")
        return visit.id

    async def schedule(self) -> ScheduleMessage:
        assert self.kiosk_id is not None
        async with self.services.read() as session:
            return await kiosk_schedule(session, self.kiosk_id, self.services.clock.now())

    async def send_schedule(self, conn: Connection) -> None:
        await conn.send(await self.schedule())

    async def opened(self, conn: Connection) -> None:
        assert self.kiosk_id is not None
        schedule = await self.schedule()
        if schedule.visits:
            self.call_coming()  # a visit on this kiosk's day
        await conn.send(
            WelcomeMessage(
                role="kiosk",
                server_time=self.services.clock.now(),
                ice_servers=client_ice_servers(
                    self.services.settings, f"kiosk-{self.kiosk_id}", self.services.clock.now()
                ),
                heartbeat_s=self.heartbeat_s,
                connect_timeout_s=self.services.settings.media_connect_timeout_s,
                media_sessions=self.media_sessions([visit.id for visit in schedule.visits]),
            )
        )
        await self.app[HUB].kiosk_connected(self.kiosk_id, conn)
        self.calls = KioskCalls(self.app[HUB], self.kiosk_id)
        self.chat = ChatFeed(self.app[HUB], self.services, conn, messages_of_kiosk(self.kiosk_id))
        await self.chat.start()
        await conn.send(schedule)

    async def check_join(self, visit_id: int) -> None:
        await self.app[HUB].pins.check_offer(visit_id)

    async def handle_other(self, conn: Connection, message: AnyClientMessage) -> None:
        if self.calls is not None and self.calls.handles(message):
            await self.calls.handle(conn, message)
            return
        if isinstance(message, ScheduleRequest):
            await self.send_schedule(conn)
            return
        if isinstance(message, PinConfirmMessage):
            assert self.kiosk_id is not None
            await self.app[HUB].pins.confirm(
                message.visit_id, self.kiosk_id, message.pin, request_id=conn.request_id
            )
            await conn.send(PinAcceptedMessage(visit_id=message.visit_id))
            return
        if isinstance(message, ChatMessage):
            assert self.kiosk_id is not None
            visit_id = (
                await self.allowed_visit(message.visit_id)
                if message.visit_id is not None
                else await live_visit_of_kiosk(self.services, self.kiosk_id)
            )
            await post_message(self.services, visit_id, "kiosk", message.text)
            return
        await super().handle_other(conn, message)

    async def closed(self, conn: Connection) -> None:
        if self.chat is not None:
            self.chat.stop()
        if self.kiosk_id is not None:
            self.app[HUB].kiosk_disconnected(self.kiosk_id, conn)
        if self.chat is not None:
            await self.chat.close()
