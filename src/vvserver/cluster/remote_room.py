"""A room hosted on another node, as signaling sees it: its event stream, fed from Redis.

The hosting node publishes every event of its rooms on ``<prefix>:roomev`` (``RoomHost``);
each node hands them to the ``RemoteRoom`` of the visit, whose subscribers (the hub's relay to
this node's sockets) get them as if the room were here. The stream ends after ``VisitEnded``,
or at once when the hosting node is lost (``lost()``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from vvserver.media.room_events import (
    ParticipantStateChanged,
    QualityReport,
    Role,
    RoomEvent,
    VisitEnded,
)

MAX_PENDING = 100


class RemoteEventStream:
    """One subscriber's events; iterate with ``async for`` until the room ends."""

    def __init__(self) -> None:
        self._pending: deque[RoomEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def push(self, event: RoomEvent) -> None:
        if self._closed:
            return
        if len(self._pending) >= MAX_PENDING:
            for index, queued in enumerate(self._pending):
                if isinstance(queued, QualityReport):  # the ones worth losing
                    del self._pending[index]
                    break
            else:
                self._pending.popleft()
        self._pending.append(event)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[RoomEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RoomEvent]:
        while True:
            while not self._pending:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
            yield self._pending.popleft()


class RemoteRoom:
    def __init__(self, visit_id: int, node: str) -> None:
        self.visit_id = visit_id
        self.node = node
        self._streams: list[RemoteEventStream] = []
        self._roles: set[Role] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def participant_roles(self) -> tuple[Role, ...]:
        """The sides whose media connection the hosting node holds (as its events said)."""
        return tuple(sorted(self._roles))

    def events(self) -> RemoteEventStream:
        stream = RemoteEventStream()
        if self._closed:
            stream.close()
        else:
            self._streams.append(stream)
        return stream

    def deliver(self, event: RoomEvent) -> None:
        if self._closed:
            return
        if isinstance(event, ParticipantStateChanged):
            if event.state == "disconnected":
                self._roles.discard(event.role)
            else:
                self._roles.add(event.role)
        for stream in self._streams:
            stream.push(event)
        if isinstance(event, VisitEnded):
            self._end()

    def lost(self) -> None:
        """The hosting node is gone: the stream ends without ``VisitEnded`` (the visit goes on)."""
        self._end()

    def _end(self) -> None:
        self._closed = True
        self._roles.clear()
        for stream in self._streams:
            stream.close()
        self._streams.clear()
