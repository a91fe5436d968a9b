"""`RoomConnections`: a `VisitRoom`'s connections once answered (mixed into it).

Their state changes (a participant's connection that fails or closes is dropped; it may offer
again), a participant hanging up, a monitor stopping, each side's wait for its media to
connect (``MediaNotConnected`` once per wait), and the participants' quality sampled.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from vvserver.media.room_events import (
    MediaNotConnected,
    MonitorDropped,
    ParticipantStateChanged,
    QualityReport,
    Role,
    VisitEnded,
)

if TYPE_CHECKING:
    from vvserver.aio import TaskSet
    from vvserver.media.media_flow import MediaFlowWatch
    from vvserver.media.participant import ParticipantConnection, VisitLog
    from vvserver.media.quality import QualityMeter
    from vvserver.media.room_events import EventBroadcaster


class RoomConnections:
    """The room's connections after `join`/`monitor`; `VisitRoom.__init__` sets the state
    below."""

    visit_id: int
    log: VisitLog
    _participants: dict[Role, ParticipantConnection]
    _monitors: dict[str, ParticipantConnection]
    _connect_timeout: float | None
    _connect_waits: dict[Role, float]
    _events: EventBroadcaster
    _tasks: TaskSet
    _ended: VisitEnded | None
    _flows: dict[Role, MediaFlowWatch]
    _quality_meters: dict[Role, QualityMeter]
    _latest_quality: dict[Role, QualityReport]

    @property
    def closed(self) -> bool:
        return self._ended is not None

    @property
    def ended(self) -> VisitEnded | None:
        return self._ended

    def quality(self, role: Role) -> QualityReport | None:
        """The latest quality report for a participant, if one was measured."""
        return self._latest_quality.get(role)

    async def stop_monitor(self, monitor_id: str) -> None:
        connection = self._monitors.pop(monitor_id, None)
        if connection is not None:
            await connection.close()
            self.log.info("monitor %s stopped", monitor_id)

    async def leave(self, role: Role) -> None:
        """Close one participant's connection (the room stays open for a reconnect)."""
        self._connect_waits.pop(role, None)  # hung up: not a side that cannot connect
        await self._remove(role)

    async def _remove(self, role: Role) -> None:
        connection = self._participants.pop(role, None)
        if connection is not None:
            await connection.close()
            self._flows[role].reset()  # no media is expected from a side that is not there
            self._events.publish(ParticipantStateChanged(self.visit_id, role, "disconnected"))

    # --- internals ----------------------------------------------------------------------------

    async def _measure_quality(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for role, connection in list(self._participants.items()):
                try:
                    report = await self._quality_meters[role].sample(connection.pc)
                except Exception as exc:  # a connection closing under us: skip this round
                    self.log.warning("quality sample of %s failed: %r", role, exc)
                    continue
                if report is not None and self._participants.get(role) is connection:
                    self._latest_quality[role] = report
                    self._events.publish(report)

    def _expect_connection(self, role: Role) -> None:
        """Start the side's wait to connect, unless it is waiting already."""
        if self._connect_timeout is None or role in self._connect_waits:
            return
        connection = self._participants.get(role)
        if connection is not None and connection.connection_state == "connected":
            return
        since = asyncio.get_running_loop().time()
        self._connect_waits[role] = since
        self._tasks.create(
            self._connect_deadline(role, since, since + self._connect_timeout),
            name=f"visit {self.visit_id} {role} connect deadline",
        )

    async def _connect_deadline(self, role: Role, since: float, deadline: float) -> None:
        await asyncio.sleep(deadline - asyncio.get_running_loop().time())
        if self.closed or self._connect_waits.get(role) != since:
            return  # connected, or hung up, meanwhile
        waited = asyncio.get_running_loop().time() - since
        # The wait stays recorded: one event per wait, however often the side offers again.
        self.log.warning(
            "%s media not connected %.1f s after it joined (ICE/DTLS did not get through)",
            role,
            waited,
        )
        self._events.publish(MediaNotConnected(self.visit_id, role, round(waited, 1)))

    def _connection_state_changed(self, connection: ParticipantConnection, state: str) -> None:
        role = next((r for r, c in self._participants.items() if c is connection), None)
        monitor = next((m for m, c in self._monitors.items() if c is connection), None)
        if role is not None and state == "connected":
            self._connect_waits.pop(role, None)
            self._events.publish(ParticipantStateChanged(self.visit_id, role, "connected"))
        elif state in ("failed", "closed"):
            if role is not None:
                self._tasks.create(self._drop(role, connection), name=f"drop {role}")
            elif monitor is not None:
                self._tasks.create(
                    self._drop_monitor(monitor, connection), name=f"drop monitor {monitor}"
                )

    async def _drop(self, role: Role, connection: ParticipantConnection) -> None:
        if self._participants.get(role) is connection:
            self.log.info("%s connection %s: dropping it", role, connection.connection_state)
            await self._remove(role)  # it may offer again: its wait to connect goes on

    async def _drop_monitor(self, monitor_id: str, connection: ParticipantConnection) -> None:
        if self._monitors.get(monitor_id) is connection:
            await self.stop_monitor(monitor_id)
            self._events.publish(MonitorDropped(self.visit_id, monitor_id))
