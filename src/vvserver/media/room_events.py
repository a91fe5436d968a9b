"""Typed room events and an asyncio-friendly broadcast stream of them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

Role = Literal["visitor", "kiosk"]
ROLES: tuple[Role, ...] = get_args(Role)
# "draining": the room's server is stopping before the end; the call goes on elsewhere
# (its clients are told to re-join), so this end is not the visit's end.
EndReason = Literal["time_up", "terminated", "closed", "failed", "draining"]
# Seconds between a room's QualityReports.
DEFAULT_QUALITY_INTERVAL = 5.0


# The room's refusals live here, with its events, so that the layers above catch them without
# importing the room (and with it the media stack, which loads at the first call).
class RoomClosed(RuntimeError):
    """The room has ended; no one can join it any more."""


class MonitorRefused(RuntimeError):
    """A monitor request the media layer refuses; `code` is a stable snake_case reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class VisitWarning:
    """The visit ends in `seconds_left` seconds."""

    visit_id: int
    seconds_left: int


@dataclass(frozen=True, slots=True)
class SlotStarted:
    """The slot started (`at`, aware UTC): the room's waiting room is over, media is forwarded
    and recorded from now on. Not relayed to clients (they count down to the start)."""

    visit_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class VisitEnded:
    """The room closed; no more events follow."""

    visit_id: int
    reason: EndReason
    message: str


@dataclass(frozen=True, slots=True)
class ParticipantStateChanged:
    visit_id: int
    role: Role
    state: Literal["joined", "connected", "disconnected"]


@dataclass(frozen=True, slots=True)
class MediaFlowChanged:
    """A side's media reaches the relay again (`flowing`), or it stopped for more than 2 s.

    `at` is when (aware UTC): its first packet, or its last packet before the silence. A
    side's first media after it joins is a change to flowing too; a side that leaves or
    drops simply stops being watched (its connection state says so).
    """

    visit_id: int
    role: Role
    flowing: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class MediaNotConnected:
    """A side joined (its offer was answered) `waited_s` seconds ago and no peer connection of
    it has connected since (ICE/DTLS does not get through: e.g. its network blocks UDP).

    Published once per such wait; a side that connects (or leaves on purpose) starts afresh.
    """

    visit_id: int
    role: Role
    waited_s: float


@dataclass(frozen=True, slots=True)
class QualityReport:
    """What one participant sends and receives, from the relay's point of view."""

    visit_id: int
    role: Role
    video_fps_in: float
    bitrate_in_bps: float
    packets_lost_in: int  # since the previous report
    round_trip_time_s: float | None


@dataclass(frozen=True, slots=True)
class MonitorDropped:
    """A monitor's connection closed by itself (not stopped by the officer). Staff-side only:
    never relayed to the visit's participants."""

    visit_id: int
    monitor_id: str


RoomEvent = (
    SlotStarted
    | VisitWarning
    | VisitEnded
    | ParticipantStateChanged
    | MediaFlowChanged
    | MediaNotConnected
    | QualityReport
    | MonitorDropped
)


class EventSubscription:
    """One consumer's view of a room's events; iterate with `async for`."""

    def __init__(self, max_pending: int) -> None:
        self._pending: deque[RoomEvent] = deque()
        self._max_pending = max_pending
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def _push(self, event: RoomEvent) -> None:
        if self._closed:
            return
        if len(self._pending) >= self._max_pending:
            # Keep warnings and the end; quality reports are the ones worth losing.
            for index, queued in enumerate(self._pending):
                if isinstance(queued, QualityReport):
                    del self._pending[index]
                    break
            else:
                self._pending.popleft()
            self.dropped += 1
        self._pending.append(event)
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self) -> RoomEvent | None:
        """The next event, or None once the stream has ended and is drained."""
        while not self._pending:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._pending.popleft()

    def __aiter__(self) -> AsyncIterator[RoomEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RoomEvent]:
        while (event := await self.next()) is not None:
            yield event


class EventBroadcaster:
    """Fans room events out to subscriptions; each has its own bounded buffer."""

    def __init__(self, max_pending: int = 100) -> None:
        self._max_pending = max_pending
        self._subscriptions: list[EventSubscription] = []
        self._closed = False
        self.history: list[RoomEvent] = []  # warnings / state changes / end, for late joiners

    def subscribe(self) -> EventSubscription:
        subscription = EventSubscription(self._max_pending)
        if self._closed:
            for event in self.history[-1:]:
                subscription._push(event)
            subscription._close()
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: EventSubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        subscription._close()

    def publish(self, event: RoomEvent) -> None:
        if self._closed:
            return
        if not isinstance(event, QualityReport):
            self.history.append(event)
            del self.history[:-50]
        for subscription in self._subscriptions:
            subscription._push(event)

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscriptions:
            subscription._close()
        self._subscriptions.clear()
