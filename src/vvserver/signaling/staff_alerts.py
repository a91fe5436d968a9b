"""Alerts for the officers of a facility: raised on any node, delivered to the sockets here.

* ``raise_alert`` puts an alert on the visit event bus (``StaffAlertEvent``), so the officers
  connected to every node get it; ``deliver`` hands one that arrived from the bus to each
  officer channel of this process (``listeners``; each channel filters by its scope).
* A visit that starts while its kiosk is offline (on every node) raises ``kiosk_offline``,
  except in the first ``kiosk_offline_grace_s`` after the server started (a restart cut every
  kiosk's socket): then the alert comes at the grace's end, only if the kiosk is still away
  and the visit still on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from vvserver.aio import TaskSet
from vvserver.db.models import Visit
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import StaffAlertEvent, VisitStartEvent
from vvserver.signaling.protocol import AlertMessage

logger = logging.getLogger(__name__)

# An officer channel's alert sink: (alert, facility id of the visit).
AlertListener = Callable[[AlertMessage, int], Awaitable[None]]


class StaffAlerts:
    def __init__(
        self, services: Services, tasks: TaskSet, kiosk_online: Callable[[int], bool]
    ) -> None:
        self.services = services
        self.listeners: set[AlertListener] = set()
        self._tasks = tasks
        self._kiosk_online = kiosk_online  # on any node
        # Monotonic start of serving: the kiosks' grace to reconnect runs from here.
        self.started_at = time.monotonic()

    async def raise_alert(self, alert: AlertMessage, facility_id: int) -> None:
        """An alert for staff on every node (through the visit event bus)."""
        self.services.events.publish(
            StaffAlertEvent(
                code=alert.code,
                visit_id=alert.visit_id,
                kiosk_id=alert.kiosk_id,
                facility_id=facility_id,
                message=alert.message,
                at=alert.server_time,
            )
        )

    async def deliver(self, alert: AlertMessage, facility_id: int) -> None:
        """Hand an alert to every officer channel of this process."""
        for listener in list(self.listeners):
            try:
                await listener(alert, facility_id)
            except Exception:
                logger.exception("could not deliver alert %s", alert.code)

    async def kiosk_missing(self, event: VisitStartEvent) -> None:
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
        self._tasks.create(
            self._kiosk_offline_after(event, grace_left),
            name=f"visit {event.visit_id} kiosk grace",
        )

    async def _kiosk_offline_after(self, event: VisitStartEvent, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._kiosk_online(event.kiosk_id):
            return  # it came back in time (and found the visit in its schedule)
        async with self.services.read() as session:
            visit = await session.get(Visit, event.visit_id)
        if visit is None or visit.state not in ("scheduled", "ready", "live"):
            return  # ended (or cancelled) meanwhile
        await self._kiosk_offline(event)

    async def _kiosk_offline(self, event: VisitStartEvent) -> None:
        logger.warning("visit %s starts but kiosk %s is offline", event.visit_id, event.kiosk_id)
        await self.deliver(
            AlertMessage(
                code="kiosk_offline",
                visit_id=event.visit_id,
                kiosk_id=event.kiosk_id,
                message="the visit starts but its kiosk is offline",
                server_time=self.services.clock.now(),
            ),
            event.facility_id,
        )
