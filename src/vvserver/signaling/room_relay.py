"""A visit's media room events as protocol messages, and the latest figures per side.

The hub runs one relay per visit, started when a participant's offer has been answered. Warnings,
the end (with its reason), participant media states, a side whose media cannot connect and
quality reports go to the visitor's and the kiosk's sockets; states, quality, whether a side's
media reaches the relay (in the call, or losing time) and whether it cannot connect also feed
the live list (through the hub).
"""

from __future__ import annotations

import logging

from vvserver.media.room_events import (
    MediaFlowChanged,
    MediaNotConnected,
    MonitorDropped,
    ParticipantStateChanged,
    QualityReport,
    RoomEvent,
    SlotStarted,
    VisitEnded,
    VisitWarning,
)
from vvserver.signaling.protocol import (
    AnyServerMessage,
    MediaNotConnectedMessage,
    MediaState,
    ParticipantMessage,
    QualityMessage,
    QualityOut,
    VisitEndedMessage,
    VisitWarningMessage,
)

logger = logging.getLogger(__name__)


def quality_out(report: QualityReport) -> QualityOut:
    rtt = report.round_trip_time_s
    return QualityOut(
        video_fps_in=round(report.video_fps_in, 1),
        bitrate_in_bps=round(report.bitrate_in_bps, -3),
        packets_lost_in=report.packets_lost_in,
        round_trip_time_s=None if rtt is None else round(rtt, 3),
    )


def not_connected_text(event: MediaNotConnected) -> str:
    side = "the visitor's" if event.role == "visitor" else "the kiosk's"
    return (
        f"{side} media has not connected {event.waited_s:.0f} s after joining; "
        "its network may block the call (UDP)"
    )


def event_message(event: RoomEvent) -> AnyServerMessage | None:
    """The participants' message for a room event; None for staff-side events (monitors, the
    live list's media flow, the slot's start: clients count down to it themselves)."""
    if isinstance(event, MonitorDropped | MediaFlowChanged | SlotStarted):
        return None
    if isinstance(event, VisitWarning):
        return VisitWarningMessage(visit_id=event.visit_id, seconds_left=event.seconds_left)
    if isinstance(event, VisitEnded):
        if event.reason == "draining":
            return None  # not the visit's end: the clients get ``rejoin`` once it is handed off
        return VisitEndedMessage(
            visit_id=event.visit_id, reason=event.reason, message=event.message
        )
    if isinstance(event, ParticipantStateChanged):
        return ParticipantMessage(visit_id=event.visit_id, role=event.role, state=event.state)
    if isinstance(event, MediaNotConnected):
        return MediaNotConnectedMessage(
            visit_id=event.visit_id,
            role=event.role,
            waited_s=event.waited_s,
            message=not_connected_text(event),
        )
    return QualityMessage(visit_id=event.visit_id, role=event.role, quality=quality_out(event))


class MediaFigures:
    """The latest media state and quality of each side of each visit (for the live list)."""

    def __init__(self) -> None:
        self._states: dict[tuple[int, str], MediaState] = {}
        self._quality: dict[tuple[int, str], QualityOut] = {}
        self._silent: set[tuple[int, str]] = set()
        self._flowing: set[tuple[int, str]] = set()
        self._unconnected: set[tuple[int, str]] = set()

    def flowing(self, visit_id: int, role: str) -> bool:
        """The side's media reaches the relay now (the room's media-flow events)."""
        return (visit_id, role) in self._flowing

    def cannot_connect(self, visit_id: int, role: str) -> bool:
        """The side joined and its media has not connected within the connect timeout."""
        return (visit_id, role) in self._unconnected

    def state(self, visit_id: int, role: str) -> MediaState:
        return self._states.get((visit_id, role), "none")

    def losing(self, visit_id: int, role: str) -> bool:
        """The side's media stopped reaching the relay (for more than 2 s) and has not
        returned: it is losing time now."""
        return (visit_id, role) in self._silent

    def quality(self, visit_id: int, role: str) -> QualityOut | None:
        return self._quality.get((visit_id, role))

    def record(self, event: RoomEvent) -> None:
        if isinstance(event, ParticipantStateChanged):
            key = (event.visit_id, event.role)
            self._states[key] = event.state
            if event.state == "connected":
                self._unconnected.discard(key)
            else:  # a new connection, or none: its media is not known to flow yet
                self._flowing.discard(key)
        elif isinstance(event, MediaNotConnected):
            self._unconnected.add((event.visit_id, event.role))
        elif isinstance(event, QualityReport):
            self._quality[(event.visit_id, event.role)] = quality_out(event)
        elif isinstance(event, MediaFlowChanged):
            key = (event.visit_id, event.role)
            if event.flowing:
                self._silent.discard(key)
                self._flowing.add(key)
                self._unconnected.discard(key)
            else:
                self._silent.add(key)
                self._flowing.discard(key)
        elif isinstance(event, VisitEnded):
            self.forget(event.visit_id)

    def forget(self, visit_id: int) -> None:
        for table in (self._states, self._quality):
            for key in [key for key in table if key[0] == visit_id]:
                del table[key]
        self._silent = {key for key in self._silent if key[0] != visit_id}
        self._flowing = {key for key in self._flowing if key[0] != visit_id}
        self._unconnected = {key for key in self._unconnected if key[0] != visit_id}
