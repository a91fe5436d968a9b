"""``/ws/officer``: staff's live channel (session cookie only).

On connect: ``welcome`` and a ``live_snapshot`` of the visits in scope; afterwards a
``live_update`` with the rows that changed, whenever the hub reports a change (kiosk online or
offline, a participant joining, a visit starting) and at least every ``REFRESH_S``. Every
``SESSION_CHECK_S`` the session is resolved again: that counts as activity (an open live view
keeps the officer signed in) and closes the socket (1008) once the session is gone. Each request
is checked against the session first, and a revoked session (sign-out, deactivation, password
change or reset) closes the socket at once through the hub.
Alerts (``alert``, e.g. a visit starting while its kiosk is offline) go to staff in scope.
Requests: ``monitor``, ``stop_monitor``, ``terminate`` go to the media service; ``flag``
stores a flagged moment (``vvserver.domain.visits.flags``) and answers ``flagged``.
Chat messages (``chat``) of the non-privileged visits in scope arrive as they are stored.
"""

from __future__ import annotations

import asyncio
import logging
import time

from vvserver.aio import stop_task, wait_event
from vvserver.app_keys import HUB
from vvserver.db.models import Facility
from vvserver.domain.accounts.credentials import session_cookie_name, session_principal
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.visits.chat import messages_for_staff
from vvserver.domain.visits.flags import FlagRequest, flag_visit
from vvserver.signaling.chat_feed import STOP_WAIT_S, ChatFeed
from vvserver.signaling.connection import Connection
from vvserver.signaling.ice import client_ice_servers
from vvserver.signaling.live_board import diff_rows, live_rows
from vvserver.signaling.media_port import MediaPort
from vvserver.signaling.protocol import (
    AckMessage,
    AlertMessage,
    AnswerMessage,
    AnyClientMessage,
    AuthMessage,
    FlaggedMessage,
    FlagMessage,
    LiveSnapshotMessage,
    LiveUpdateMessage,
    LiveVisitOut,
    MonitorMessage,
    ProtocolError,
    StopMonitorMessage,
    TerminateMessage,
    VisitFlagOut,
    WelcomeMessage,
)
from vvserver.signaling.socket_loop import AuthRefused, Channel
from vvserver.signaling.staff_alerts import AlertListener

logger = logging.getLogger(__name__)

REFRESH_S = 5.0
SESSION_CHECK_S = 30.0
DEBOUNCE_S = 0.05


class OfficerChannel(Channel):
    role = "officer"
    principal: Principal | None = None
    cookie: str = ""
    rows: dict[int, LiveVisitOut]
    pusher: asyncio.Task[None] | None = None
    # Wakes the pusher; with ``stopping`` set it ends at its next step.
    changed: asyncio.Event | None = None
    stopping = False
    alert_listener: AlertListener | None = None
    chat: ChatFeed | None = None

    async def authenticate_upgrade(self) -> bool:
        cookie = self.request.cookies.get(session_cookie_name(self.services.settings))
        if not cookie or len(cookie) > 128:
            raise AuthRefused("unauthenticated", "sign in first")
        principal = await session_principal(self.services, cookie)
        if principal is None:
            raise AuthRefused("unauthenticated", "sign in first")
        if not principal.is_staff:
            raise AuthRefused("wrong_role", "this socket is for facility staff")
        self.principal, self.cookie = principal, cookie
        self.account_id, self.session_hash = principal.account_id, principal.session_hash
        return True

    async def check_credentials(self) -> None:
        principal = await session_principal(self.services, self.cookie)
        if principal is None or not principal.is_staff:
            raise AuthRefused("session_expired", "sign in again")
        self.principal = principal

    async def authenticate_message(self, message: AuthMessage) -> None:
        raise AuthRefused("unauthenticated", "sign in first")  # never reached: cookie only

    async def opened(self, conn: Connection) -> None:
        assert self.principal is not None
        account_id = self.principal.account_id
        await conn.send(
            WelcomeMessage(
                role="officer",
                server_time=self.services.clock.now(),
                ice_servers=client_ice_servers(
                    self.services.settings, f"staff-{account_id}", self.services.clock.now()
                ),
                heartbeat_s=self.heartbeat_s,
                connect_timeout_s=self.services.settings.media_connect_timeout_s,
            )
        )
        changed = self.changed = self.app[HUB].watch()
        self.rows = await self._rows()
        await conn.send(
            LiveSnapshotMessage(
                server_time=self.services.clock.now(), visits=list(self.rows.values())
            )
        )
        self.pusher = asyncio.create_task(self._push(conn, changed), name="officer live push")
        # Chat of the non-privileged visits in scope, for the tiles of the live grid.
        self.chat = ChatFeed(self.app[HUB], self.services, conn, messages_for_staff(self.principal))
        await self.chat.start()

        async def alert(message: AlertMessage, facility_id: int) -> None:
            if await self._in_scope(facility_id):
                await conn.send(message)

        self.alert_listener = alert
        self.app[HUB].alert_listeners.add(alert)

    async def _in_scope(self, facility_id: int) -> bool:
        principal = self.principal
        if principal is None:
            return False
        if principal.role != "agency_admin":
            return principal.facility_id == facility_id
        async with self.services.read() as session:
            facility = await session.get(Facility, facility_id)
        return facility is not None and facility.agency_id == principal.agency_id

    async def _rows(self) -> dict[int, LiveVisitOut]:
        assert self.principal is not None
        async with self.services.read() as session:
            return await live_rows(
                session, self.principal, self.app[HUB], self.services.clock.now()
            )

    async def _push(self, conn: Connection, changed: asyncio.Event) -> None:
        next_check = time.monotonic() + SESSION_CHECK_S
        try:
            while not conn.closed and not self.stopping:
                if await wait_event(changed, REFRESH_S):
                    await asyncio.sleep(DEBOUNCE_S)  # one update for a burst of changes
                changed.clear()
                if self.stopping:
                    return
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + SESSION_CHECK_S
                    try:
                        await self.check_credentials()
                    except AuthRefused as refused:
                        await conn.refuse(refused.code, refused.message)
                        return
                rows = await self._rows()
                added_or_changed, removed = diff_rows(self.rows, rows)
                self.rows = rows
                if added_or_changed or removed:
                    await conn.send(
                        LiveUpdateMessage(
                            server_time=self.services.clock.now(),
                            changed=added_or_changed,
                            removed=removed,
                        )
                    )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("officer live channel %s failed", conn.request_id)
            await conn.error("internal_error", "the live list stopped; reconnect")
            await conn.close(1011, "internal_error")
        finally:
            self.app[HUB].unwatch(changed)

    def _media(self) -> MediaPort:
        media = self.app[HUB].media
        if media is None:
            raise ProtocolError("media_unavailable", "calls are not available on this server")
        return media

    async def handle(self, conn: Connection, message: AnyClientMessage) -> None:
        principal = self.principal
        assert principal is not None
        if isinstance(message, MonitorMessage):
            answer = await self._media().monitor(
                message.visit_id, principal, message.sdp, request_id=conn.request_id
            )
            await conn.send(AnswerMessage(visit_id=message.visit_id, sdp=answer))
        elif isinstance(message, StopMonitorMessage):
            await self._media().stop_monitor(
                message.visit_id, principal, request_id=conn.request_id
            )
            await conn.send(AckMessage(ref="stop_monitor", visit_id=message.visit_id))
        elif isinstance(message, TerminateMessage):
            await self._media().terminate(
                message.visit_id, principal, message.reason, request_id=conn.request_id
            )
            self.app[HUB].changed()
            await conn.send(AckMessage(ref="terminate", visit_id=message.visit_id))
        elif isinstance(message, FlagMessage):
            flag = await flag_visit(
                self.services,
                principal,
                FlagRequest(
                    visit_id=message.visit_id,
                    note=message.note,
                    request_id=conn.request_id,
                    component="signaling",
                ),
            )
            await conn.send(
                FlaggedMessage(
                    flag=VisitFlagOut(
                        id=flag.id,
                        visit_id=flag.visit_id,
                        at=flag.at,
                        offset_s=flag.offset_s,
                        note=flag.note,
                        created_by=flag.created_by,
                    )
                )
            )
        else:
            raise ProtocolError("not_allowed", f"{message.type} is not an officer message")

    async def closed(self, conn: Connection) -> None:
        if self.chat is not None:
            self.chat.stop()
        if self.alert_listener is not None:
            self.app[HUB].alert_listeners.discard(self.alert_listener)
        if self.pusher is not None:
            # Asked to stop between reads, not cancelled inside a database call.
            self.stopping = True
            if self.changed is not None:
                self.changed.set()
            await stop_task(self.pusher, STOP_WAIT_S)
        if self.chat is not None:
            await self.chat.close()
