"""`ProcessRooms`: `VisitMedia`'s view of every room open in this process (mixed into it).

Its figures (`metrics`, `open_recordings`), the drain of a stopping server (no new room, wait
until none is left, or hand every call off to another node) and the close at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from vvserver.visits_live.figures import MediaMetrics
from vvserver.visits_live.handoff import DRAIN_MESSAGE

if TYPE_CHECKING:
    from vvserver.aio import TaskSet
    from vvserver.media.room_registry import RoomRegistry
    from vvserver.visits_live.ledger_store import LedgerWriter
    from vvserver.visits_live.room_watch import RoomWatch

# VisitMedia's logger: these lines read as they did when this was part of service.py.
logger = logging.getLogger("vvserver.visits_live.service")

SHUTDOWN_GRACE_S = 30.0  # how long close() lets the watches write the rooms' ends
IDLE_POLL_S = 0.2  # how often a drain looks whether the last call has ended


class ProcessRooms:
    """The rooms of this process as a whole; `VisitMedia.__init__` sets the state below."""

    rooms: RoomRegistry
    draining: bool
    _watches: dict[int, RoomWatch]
    _watch_tasks: dict[int, asyncio.Task[None]]
    _tasks: TaskSet
    _ledgers: LedgerWriter
    _rooms_opened: int
    _went_live: int
    _recordings_finished: int
    _recording_failures: int
    _monitors_refused: int

    # --- figures ----------------------------------------------------------------------------

    def metrics(self) -> MediaMetrics:
        stats = self.rooms.stats()
        live_now = sum(w.went_live for w in self._watches.values())
        return MediaMetrics(
            rooms_open=stats.rooms,
            participants_connected=stats.participants,
            monitors=stats.monitors,
            frames_forwarded=stats.frames_forwarded,
            frames_dropped=stats.frames_dropped,
            keyframe_requests_sent=stats.keyframe_requests_sent,
            rooms_opened_total=self._rooms_opened,
            visits_went_live_total=self._went_live + live_now,
            recordings_finished_total=self._recordings_finished,
            recording_failures_total=self._recording_failures,
            monitors_refused_total=self._monitors_refused,
            frames_forwarded_total=stats.frames_forwarded_total,
            packets_forwarded_total=stats.packets_forwarded_total,
            bytes_forwarded_total=stats.bytes_forwarded_total,
            frames_dropped_total=stats.frames_dropped_total,
            draining=self.draining,
        )

    def open_recordings(self) -> dict[int, int | None]:
        """Visit id -> the recording row of each room open here (None: not recorded)."""
        return {visit_id: watch.recording_id for visit_id, watch in self._watches.items()}

    # --- lifecycle --------------------------------------------------------------------------

    async def wait_settled(self, visit_id: int) -> None:
        """Wait until the visit's room (if open) has ended and its end is in the database."""
        task = self._watch_tasks.get(visit_id)
        if task is not None:
            await asyncio.shield(task)

    def start_draining(self) -> None:
        """Open no new room from now on (joins of calls already here still work)."""
        if not self.draining:
            logger.info("draining: %d calls go on, no new call opens here", len(self.rooms))
        self.draining = True

    async def wait_idle(self, *, within: float) -> bool:
        """Wait until no room is open here, at most `within` seconds; True when none is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.rooms) or self._watch_tasks:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(IDLE_POLL_S, left))
        return True

    async def hand_off_all(self) -> list[int]:
        """Close every room for a drain's hand-off; returns their visits once their ends
        (last connection time, `ready` again, recording finished) are in the database."""
        rooms = [self.rooms.get(visit_id) for visit_id in self.rooms.visit_ids()]
        open_rooms = [room for room in rooms if room is not None and not room.closed]
        await asyncio.gather(
            *(room.close("draining", DRAIN_MESSAGE) for room in open_rooms),
            return_exceptions=True,
        )
        # A call that ended by itself meanwhile (its time was up) is not handed off.
        visit_ids = [
            room.visit_id
            for room in open_rooms
            if room.ended is not None and room.ended.reason == "draining"
        ]
        for visit_id in visit_ids:
            try:
                await asyncio.wait_for(self.wait_settled(visit_id), SHUTDOWN_GRACE_S)
            except TimeoutError:
                logger.error("visit %s: the hand-off was not recorded in time", visit_id)
        return visit_ids

    async def close(self) -> None:
        """At shutdown: close every room, let the watches record the ends, then stop."""
        await self._ledgers.close()
        await self.rooms.close_all()
        pending = list(self._tasks.tasks)  # the watches, and monitor-stop audits
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S)
            if late:
                logger.error("%d rooms' ends were not recorded in time", len(late))
        await self._tasks.close()
