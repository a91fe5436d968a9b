"""The process's open visit rooms, and aggregate figures about them for metrics.

Light to import: the media stack (aiortc, PyAV, the relay's forwarding) loads with the first
room, not with the registry (``vvserver.media.stack``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vvserver.media.frames import KINDS
from vvserver.media.room_events import ROLES

if TYPE_CHECKING:
    from vvserver.media.forwarding import MediaCounters
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)


class RoomExists(RuntimeError):
    """A room for this visit is already open in this process."""


@dataclass(frozen=True, slots=True)
class MediaStats:
    """Totals over all open rooms (for a metrics endpoint)."""

    rooms: int
    participants: int
    monitors: int
    frames_forwarded: int
    frames_dropped: int
    keyframe_requests_sent: int
    # Since the process started, over every room (closed ones too): monotonic.
    frames_forwarded_total: int = 0
    packets_forwarded_total: int = 0
    bytes_forwarded_total: int = 0
    frames_dropped_total: int = 0


class RoomRegistry:
    """Owns the open rooms of this process: one per visit; a closed room leaves by itself."""

    def __init__(self) -> None:
        self._rooms: dict[int, VisitRoom] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._counters: MediaCounters | None = None
        # Called with each room as it opens, before any event (a cluster relays its events).
        self.on_open: list[Callable[[VisitRoom], None]] = []

    @property
    def counters(self) -> MediaCounters:
        """Pass to the rooms this registry opens (``counters=``): what their tracks forward.

        Made for the first room: the class lives with the forwarding, in the media stack.
        """
        if self._counters is None:
            from vvserver.media.forwarding import MediaCounters

            self._counters = MediaCounters()
        return self._counters

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, visit_id: int) -> VisitRoom | None:
        return self._rooms.get(visit_id)

    def visit_ids(self) -> list[int]:
        """The visits with a room open now."""
        return list(self._rooms)

    def open(self, visit_id: int, factory: Callable[[], VisitRoom]) -> VisitRoom:
        """Register the room `factory()` builds for `visit_id` (RoomExists if one is open)."""
        if visit_id in self._rooms:
            raise RoomExists(f"visit {visit_id} already has a media room")
        room = factory()
        if room.visit_id != visit_id:
            raise ValueError("the factory built a room for another visit")
        self._rooms[visit_id] = room
        for listener in self.on_open:
            listener(room)
        self._watchers[visit_id] = asyncio.create_task(
            self._forget_when_closed(room), name=f"registry watch {visit_id}"
        )
        return room

    async def _forget_when_closed(self, room: VisitRoom) -> None:
        events = room.events()
        async for _ in events:
            pass  # the stream ends after VisitEnded
        if self._rooms.get(room.visit_id) is room:
            del self._rooms[room.visit_id]
        self._watchers.pop(room.visit_id, None)

    async def wait_forgotten(self, visit_id: int) -> None:
        """Wait until the room of `visit_id` (if any) has closed and left the registry."""
        watcher = self._watchers.get(visit_id)
        if watcher is not None:
            await asyncio.shield(watcher)

    def stats(self) -> MediaStats:
        rooms = list(self._rooms.values())
        feeds = [room.feed(role, kind) for room in rooms for role in ROLES for kind in KINDS]
        tracks = [
            track
            for room in rooms
            for connection in room.connections()
            for track in connection.tracks
        ]
        counters = self._counters
        return MediaStats(
            rooms=len(rooms),
            participants=sum(
                room.participant(role) is not None for room in rooms for role in ROLES
            ),
            monitors=sum(len(room.monitor_ids) for room in rooms),
            frames_forwarded=sum(track.frames_out for track in tracks),
            frames_dropped=sum(track.frames_dropped for track in tracks),
            keyframe_requests_sent=sum(feed.plis_sent for feed in feeds),
            # No counters yet: no room has opened in this process, nothing was forwarded.
            frames_forwarded_total=counters.frames_forwarded if counters else 0,
            packets_forwarded_total=counters.packets_forwarded if counters else 0,
            bytes_forwarded_total=counters.bytes_forwarded if counters else 0,
            frames_dropped_total=counters.frames_dropped if counters else 0,
        )

    async def close_all(self, message: str = "the media server is shutting down") -> None:
        """Close every room (at shutdown) and wait until all have left the registry."""
        rooms = list(self._rooms.values())
        await asyncio.gather(*(room.close("closed", message) for room in rooms))
        watchers = list(self._watchers.values())
        await asyncio.gather(*watchers, return_exceptions=True)
