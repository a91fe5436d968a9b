"""A visit's media room events as protocol messages, and the latest figures per side.

The hub runs one relay per visit, started when a participant's offer has been answered. Warnings,
the end (with its reason), participant media states and quality reports go to the visitor's
and the kiosk's sockets; states, quality and whether a side's media reaches the relay (a side
losing time) also feed the live list (through the hub).
"""

from __future__ import annotations

import logging

from vvserver.media.room_events import (
    MediaFlowChanged,
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
    return QualityMessage(visit_id=event.visit_id, role=event.role, quality=quality_out(event))


class MediaFigures:
    """The latest media state and quality of each side of each visit (for the live list)."""

    def __init__(self) -> None:
        self._states: dict[tuple[int, str], MediaState] = {}
        self._quality: dict[tuple[int, str], QualityOut] = {}
        self._silent: set[tuple[int, str]] = set()

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
            self._states[(event.visit_id, event.role)] = event.state
        elif isinstance(event, QualityReport):
            self._quality[(event.visit_id, event.role)] = quality_out(event)
        elif isinstance(event, MediaFlowChanged):
            if event.flowing:
                self._silent.discard((event.visit_id, event.role))
            else:
                self._silent.add((event.visit_id, event.role))
        elif isinstance(event, VisitEnded):
            self.forget(event.visit_id)

    def forget(self, visit_id: int) -> None:
        for table in (self._states, self._quality):
            for key in [key for key in table if key[0] == visit_id]:
                del table[key]
        self._silent = {key for key in self._silent if key[0] != visit_id}
