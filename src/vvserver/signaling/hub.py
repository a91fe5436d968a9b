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
  refresh. A visit that starts while its kiosk is offline raises the ``kiosk_offline`` alert,
  except in the first ``kiosk_offline_grace_s`` after the server started (a restart cut every
  kiosk's socket): then the alert comes at the grace's end, only if the kiosk is still away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import update

from vvserver.aio import TaskSet
from vvserver.db.models import Kiosk, Visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import LiveListChangedEvent, VisitEvent, VisitStartEvent
from vvserver.domain.visits.kiosk_day import pin_required_for
from vvserver.signaling.connection import Connection
from vvserver.signaling.kiosk_pin import KioskPins
from vvserver.signaling.media_port import MediaPort, ParticipantRole, RoomEvents
from vvserver.signaling.protocol import AlertMessage, VisitStartMessage
from vvserver.signaling.room_relay import MediaFigures, event_message

logger = logging.getLogger(__name__)

KIOSK_SEEN_EVERY_S = 30.0

VisitorNotifier = Callable[[Connection, int], Awaitable[None]]
# An officer channel's alert sink: (alert, facility id of the visit).
AlertListener = Callable[[AlertMessage, int], Awaitable[None]]


class SignalingHub:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._kiosks: dict[int, set[Connection]] = {}
        self._visitors: dict[int, set[Connection]] = {}
        self._joined: dict[tuple[int, ParticipantRole], set[Connection]] = {}
        self._watchers: set[asyncio.Event] = set()
        # Chat feeds wake only for chat: room events (quality every 5 s per side) must not make
        # every socket's feed query the store.
        self._chat_watchers: set[asyncio.Event] = set()
        # Set by the visitor channel: sends a visitor socket its visit's status.
        self.visitor_notifier: VisitorNotifier | None = None
        self.alert_listeners: set[AlertListener] = set()
        self.pins = KioskPins(services, self._alert)
        self.figures = MediaFigures()
        self._relays: dict[int, asyncio.Task[None]] = {}
        self.tasks = TaskSet()
        # The media service (``VisitMedia``); None on a server without calls.
        self.media: MediaPort | None = None
        # Monotonic start of serving (set again when the background work starts).
        self.started_at = time.monotonic()

    # --- presence -------------------------------------------------------------------------

    def kiosk_online(self, kiosk_id: int) -> bool:
        return self.services.kiosks_online.is_online(kiosk_id)

    def online_kiosks(self) -> list[int]:
        return [kiosk_id for kiosk_id, conns in self._kiosks.items() if conns]

    def participant_connected(self, visit_id: int, role: ParticipantRole) -> bool:
        return any(not conn.closed for conn in self._joined.get((visit_id, role), ()))

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
        self._joined.setdefault((visit_id, role), set()).add(conn)
        self.changed()

    def left(self, visit_id: int, role: ParticipantRole, conn: Connection) -> None:
        conns = self._joined.get((visit_id, role))
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._joined[(visit_id, role)]
        self.changed()

    def _forget(self, conn: Connection) -> None:
        for key in [key for key, conns in self._joined.items() if conn in conns]:
            self._joined[key].discard(conn)
            if not self._joined[key]:
                del self._joined[key]

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

    def chat_posted(self) -> None:
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

    async def deliver(self, event: VisitEvent) -> None:
        """A visit started (kiosk: ``visit_start``) or ended; its visitor gets the new status."""
        if isinstance(event, LiveListChangedEvent):
            self.changed()
            return
        if isinstance(event, VisitStartEvent):
            async with self.services.read() as session:
                visit = await session.get(Visit, event.visit_id)
                pin_required = visit is not None and await pin_required_for(session, visit)
            message = VisitStartMessage(
                visit_id=event.visit_id,
                start_at=event.start_at,
                end_at=event.end_at,
                server_time=self.services.clock.now(),
                pin_required=pin_required,
            )
            kiosks = list(self._kiosks.get(event.kiosk_id, ()))
            if not kiosks:
                await self._kiosk_missing(event)
            for conn in kiosks:
                await conn.send(message)
        notify = self.visitor_notifier
        if notify is not None:
            for conn in list(self._visitors.get(event.visit_id, ())):
                await notify(conn, event.visit_id)
        self.changed()

    async def _kiosk_missing(self, event: VisitStartEvent) -> None:
        """The visit starts without its kiosk: alert now, or after the start-up grace."""
        grace_left = (
            self.started_at + self.services.settings.kiosk_offline_grace_s - time.monotonic()
        )
        if grace_left <= 0:
            await self._kiosk_offline(event)
            return
        logger.info(
            "visit %s starts before kiosk %s reconnected after the server's start; "
            "waiting %.1f s before calling it offline",
            event.visit_id,
            event.kiosk_id,
            grace_left,
        )
        self.tasks.create(
            self._kiosk_offline_after(event, grace_left),
            name=f"visit {event.visit_id} kiosk grace",
        )

    async def _kiosk_offline_after(self, event: VisitStartEvent, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._kiosks.get(event.kiosk_id):
            return  # it came back in time (and found the visit in its schedule)
        async with self.services.read() as session:
            visit = await session.get(Visit, event.visit_id)
        if visit is None or visit.state not in ("scheduled", "ready", "live"):
            return  # ended (or cancelled) meanwhile
        await self._kiosk_offline(event)

    async def _kiosk_offline(self, event: VisitStartEvent) -> None:
        logger.warning("visit %s starts but kiosk %s is offline", event.visit_id, event.kiosk_id)
        await self._alert(
            AlertMessage(
                code="kiosk_offline",
                visit_id=event.visit_id,
                kiosk_id=event.kiosk_id,
                message="the visit starts but its kiosk is offline",
                server_time=self.services.clock.now(),
            ),
            event.facility_id,
        )

    async def _alert(self, alert: AlertMessage, facility_id: int) -> None:
        for listener in list(self.alert_listeners):
            try:
                await listener(alert, facility_id)
            except Exception:
                logger.exception("could not deliver alert %s", alert.code)
