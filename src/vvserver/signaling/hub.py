"""The process's signaling state: who is connected, kiosk presence, and visit-start fan-out.

* Kiosk presence: a kiosk is online while it has an open socket. Online kiosks get their
  ``Kiosk.last_seen_at`` written on connect and every ``KIOSK_SEEN_EVERY_S`` (the scheduler
  reads it to tell an offline kiosk at slot time).
* Participants: which visits have a visitor or kiosk socket that joined the call.
* Watchers (officers' live boards) get a nudge whenever any of this changes.
* Room relays: once a participant has joined, the visit's media room events (warnings, end,
  participant states, quality) go to its visitor and kiosk sockets, and feed the live list.
* ``run_events`` consumes ``services.events``: when a visit's slot starts the kiosk gets
  ``visit_start``; when it starts or ends the visitor gets ``visit_status`` and live lists
  refresh; a stored chat message wakes the chat feeds; a staff alert goes to officers in scope.
  When credentials are revoked (sign-out, deactivation, password change or reset, kiosk
  disabled or rotated), the process's session cache drops them and every socket that
  authenticated with them gets ``error`` ``credentials_revoked`` and close 1008 at once.
  A visit that starts while its kiosk is offline raises the ``kiosk_offline`` alert
  (``staff_alerts``).
* Visit now (``ringing``): rings to both sides' sockets; visitors' pages on standby.
* In a cluster the bus, kiosk presence and participants are cluster-wide (``vvserver.cluster``):
  this hub serves the sockets of its own process and reads who is connected anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import update

from vvserver.aio import TaskSet
from vvserver.db.models import Kiosk, Visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import (
    ChatPostedEvent,
    CredentialsRevokedEvent,
    LiveListChangedEvent,
    RingEvent,
    StaffAlertEvent,
    VisitEvent,
    VisitStartEvent,
)
from vvserver.signaling.connection import CLOSE_SERVICE_RESTART, Connection
from vvserver.signaling.kiosk_pin import KioskPins
from vvserver.signaling.media_port import MediaPort, ParticipantRole, RoomEvents
from vvserver.signaling.protocol import AlertMessage, RejoinMessage, VisitStartMessage
from vvserver.signaling.ringing import Ringing
from vvserver.signaling.room_relay import MediaFigures, event_message
from vvserver.signaling.staff_alerts import StaffAlerts

logger = logging.getLogger(__name__)

KIOSK_SEEN_EVERY_S = 30.0

VisitorNotifier = Callable[[Connection, int], Awaitable[None]]


class SignalingHub:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._kiosks: dict[int, set[Connection]] = {}
        self._visitors: dict[int, set[Connection]] = {}
        self._joined: dict[tuple[int, ParticipantRole], set[Connection]] = {}
        # Every authenticated socket, to find those whose credentials are revoked.
        self._sockets: set[Connection] = set()
        self._watchers: set[asyncio.Event] = set()
        # Chat feeds wake only for chat: room events (quality every 5 s per side) must not make
        # every socket's feed query the store.
        self._chat_watchers: set[asyncio.Event] = set()
        # Set by the visitor channel: sends a visitor socket its visit's status.
        self.visitor_notifier: VisitorNotifier | None = None
        self.tasks = TaskSet()
        self.alerts = StaffAlerts(services, self.tasks, self.kiosk_online)
        # Each officer channel's alert sink (``staff_alerts.AlertListener``).
        self.alert_listeners = self.alerts.listeners
        self.pins = KioskPins(services, self.alerts.raise_alert)
        # Visit now: visitors' standby pages and ring delivery.
        self.ringing = Ringing(services)
        self.figures = MediaFigures()
        self._relays: dict[int, asyncio.Task[None]] = {}
        # The media service (``VisitMedia``); None on a server without calls.
        self.media: MediaPort | None = None

    @property
    def started_at(self) -> float:
        """Monotonic start of serving (set again when the background work starts)."""
        return self.alerts.started_at

    @started_at.setter
    def started_at(self, value: float) -> None:
        self.alerts.started_at = value

    # --- presence -------------------------------------------------------------------------

    def kiosk_online(self, kiosk_id: int) -> bool:
        return self.services.kiosks_online.is_online(kiosk_id)

    def online_kiosks(self) -> list[int]:
        return [kiosk_id for kiosk_id, conns in self._kiosks.items() if conns]

    def participant_connected(self, visit_id: int, role: ParticipantRole) -> bool:
        return self.services.participants.is_joined(visit_id, role)

    async def kiosk_connected(self, kiosk_id: int, conn: Connection) -> None:
        self._kiosks.setdefault(kiosk_id, set()).add(conn)
        self.services.kiosks_online.connected(kiosk_id)
        await self.mark_kiosks_seen([kiosk_id])
        self.changed()

    def kiosk_disconnected(self, kiosk_id: int, conn: Connection) -> None:
        conns = self._kiosks.get(kiosk_id)
        if conns is not None:
            if conn in conns:
                conns.discard(conn)
                self.services.kiosks_online.disconnected(kiosk_id)
            if not conns:
                del self._kiosks[kiosk_id]
        self._forget(conn)
        self.changed()

    def visitor_connected(self, visit_id: int, conn: Connection) -> None:
        self._visitors.setdefault(visit_id, set()).add(conn)

    def visitor_disconnected(self, visit_id: int, conn: Connection) -> None:
        conns = self._visitors.get(visit_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._visitors[visit_id]
        self._forget(conn)
        self.changed()

    def joined(self, visit_id: int, role: ParticipantRole, conn: Connection) -> None:
        conns = self._joined.setdefault((visit_id, role), set())
        if conn not in conns:
            conns.add(conn)
            self.services.participants.joined(visit_id, role)
        self.changed()

    def left(self, visit_id: int, role: ParticipantRole, conn: Connection) -> None:
        self._leave((visit_id, role), conn)
        self.changed()

    def _leave(self, key: tuple[int, ParticipantRole], conn: Connection) -> None:
        conns = self._joined.get(key)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        self.services.participants.left(*key)
        if not conns:
            del self._joined[key]

    def _forget(self, conn: Connection) -> None:
        for key in [key for key, conns in self._joined.items() if conn in conns]:
            self._leave(key, conn)

    async def media_lost(self, visit_id: int) -> None:
        """The node that held this visit's call is gone (cluster): the participants' sockets
        here are closed with 1012 so that their clients reconnect and re-offer at once (the
        answer comes from a room on a live node), instead of waiting ~30 s for ICE to fail."""
        conns = {
            conn for (v, _), joined in self._joined.items() if v == visit_id for conn in joined
        }
        for conn in conns:
            await conn.close(CLOSE_SERVICE_RESTART, "media_node_lost")

    # --- credentials ---------------------------------------------------------------------

    def track(self, conn: Connection) -> None:
        """An authenticated socket (its credential noted on ``conn``)."""
        self._sockets.add(conn)

    def untrack(self, conn: Connection) -> None:
        self._sockets.discard(conn)

    def revoke(self, event: CredentialsRevokedEvent) -> int:
        """Close (1008) every socket whose credential ``event`` revoked; how many."""
        self.services.sessions.forget_revoked(event)
        matched = [conn for conn in self._sockets if not conn.revoked and conn.revoked_by(event)]
        for conn in matched:
            conn.revoked = True  # from now on nothing it sends is acted on
            self.tasks.create(
                _close_revoked(conn, event.reason), name=f"close revoked socket {conn.request_id}"
            )
        if matched:
            logger.info("closed %d socket(s): %s", len(matched), event.reason)
        return len(matched)

    # --- watchers -------------------------------------------------------------------------

    def watch(self) -> asyncio.Event:
        event = asyncio.Event()
        self._watchers.add(event)
        return event

    def unwatch(self, event: asyncio.Event) -> None:
        self._watchers.discard(event)

    def changed(self) -> None:
        for event in self._watchers:
            event.set()

    def watch_chat(self) -> asyncio.Event:
        event = asyncio.Event()
        self._chat_watchers.add(event)
        return event

    def unwatch_chat(self, event: asyncio.Event) -> None:
        self._chat_watchers.discard(event)

    def chat_posted(self) -> None:  # (a ChatPostedEvent on the bus, from any node)
        """A chat message was stored: the chat feeds read what is new for them."""
        for event in self._chat_watchers:
            event.set()

    # --- media room relays ---------------------------------------------------------------

    def follow_room(self, visit_id: int, room: RoomEvents | None) -> None:
        """Relay this visit's room events (once per visit; again after a room was replaced)."""
        if room is None or room.closed:
            return
        running = self._relays.get(visit_id)
        if running is not None and not running.done():
            return
        self._relays[visit_id] = self.tasks.create(
            self._relay(visit_id, room), name=f"visit {visit_id} room relay"
        )

    async def _relay(self, visit_id: int, room: RoomEvents) -> None:
        try:
            async with self.services.read() as session:
                visit = await session.get(Visit, visit_id)
            kiosk_id = visit.kiosk_id if visit is not None else None
            async for event in room.events():
                self.figures.record(event)
                message = event_message(event)
                if message is None:
                    continue
                targets = list(self._visitors.get(visit_id, ()))
                if kiosk_id is not None:
                    targets.extend(self._kiosks.get(kiosk_id, ()))
                for conn in targets:
                    await conn.send(message)
                self.changed()
        finally:
            if self._relays.get(visit_id) is asyncio.current_task():
                del self._relays[visit_id]

    # --- background work ------------------------------------------------------------------

    async def mark_kiosks_seen(self, kiosk_ids: list[int]) -> None:
        if not kiosk_ids:
            return
        now = self.services.clock.now()
        async with self.services.write() as session:
            await session.execute(
                update(Kiosk).where(Kiosk.id.in_(kiosk_ids)).values(last_seen_at=now)
            )

    async def run_kiosks_seen(self) -> None:
        while True:
            await asyncio.sleep(KIOSK_SEEN_EVERY_S)
            try:
                await self.mark_kiosks_seen(self.online_kiosks())
            except Exception:
                logger.exception("could not record the online kiosks as seen")

    async def run_events(self) -> None:
        queue = self.services.events.subscribe()
        try:
            while True:
                event = await queue.get()
                try:
                    await self.deliver(event)
                except Exception:
                    logger.exception("could not deliver %s", event)
        finally:
            self.services.events.unsubscribe(queue)

    def _call_coming(self, sockets: list[Connection]) -> None:
        """A kiosk connected here is about to offer: have the media stack loaded for it."""
        if sockets and self.media is not None:
            self.media.prepare()

    async def deliver(self, event: VisitEvent) -> None:
        """A visit started (kiosk: ``visit_start``) or ended; its visitor gets the new status."""
        if isinstance(event, CredentialsRevokedEvent):
            self.revoke(event)
            return
        if isinstance(event, LiveListChangedEvent):
            self.changed()
            return
        if isinstance(event, ChatPostedEvent):
            self.chat_posted()
            return
        if isinstance(event, RingEvent):  # then the visitor's page gets the visit's status
            kiosks = list(self._kiosks.get(event.kiosk_id, ()))
            self._call_coming(kiosks)
            await self.ringing.deliver(event, kiosks, list(self._visitors.get(event.visit_id, ())))
        if isinstance(event, StaffAlertEvent):
            await self.alerts.deliver(
                AlertMessage(
                    code=event.code,
                    visit_id=event.visit_id,
                    kiosk_id=event.kiosk_id,
                    message=event.message,
                    server_time=event.at,
                ),
                event.facility_id,
            )
            return
        if isinstance(event, VisitStartEvent):
            message = VisitStartMessage(
                visit_id=event.visit_id,
                start_at=event.start_at,
                end_at=event.end_at,
                server_time=self.services.clock.now(),
                pin_required=await self.pins.still_required(event.visit_id),
            )
            kiosks = list(self._kiosks.get(event.kiosk_id, ()))
            self._call_coming(kiosks)
            if not kiosks and not self.kiosk_online(event.kiosk_id):  # (online: on any node)
                await self.alerts.kiosk_missing(event)
            for conn in kiosks:
                await conn.send(message)
        notify = self.visitor_notifier
        if notify is not None:
            for conn in list(self._visitors.get(event.visit_id, ())):
                await notify(conn, event.visit_id)
        self.changed()

    async def send_rejoin(self, visit_id: int, message: str) -> int:
        """Tell the visit's visitor and kiosk sockets here to re-join (a drain's hand-off);
        returns how many sockets were told."""
        async with self.services.read() as session:
            visit = await session.get(Visit, visit_id)
        targets = list(self._visitors.get(visit_id, ()))
        if visit is not None:
            targets.extend(self._kiosks.get(visit.kiosk_id, ()))
        rejoin = RejoinMessage(visit_id=visit_id, message=message)
        sent = [await conn.send(rejoin) for conn in targets]
        return sum(sent)


async def _close_revoked(conn: Connection, reason: str) -> None:
    try:
        await conn.refuse("credentials_revoked", f"these credentials were revoked ({reason})")
    except Exception:
        logger.exception("socket %s: could not close it after revocation", conn.request_id)
