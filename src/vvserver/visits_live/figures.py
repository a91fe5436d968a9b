"""Call quality and media figures, as plain dataclasses for the HTTP layer and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from vvserver.media.room_events import Role

if TYPE_CHECKING:
    from vvserver.media.room import VisitRoom

ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class ParticipantQuality:
    """One participant's latest figures as the relay sees them (None: not measured yet)."""

    role: Role
    connected: bool
    video_fps_in: float | None
    bitrate_in_bps: float | None
    packets_lost_in: int | None
    round_trip_time_s: float | None


@dataclass(frozen=True, slots=True)
class VisitQuality:
    visit_id: int
    call_open: bool
    monitors: int
    participants: tuple[ParticipantQuality, ...]


@dataclass(frozen=True, slots=True)
class MediaMetrics:
    """Totals for a metrics endpoint: open rooms now, and counters since the process started."""

    rooms_open: int
    participants_connected: int
    monitors: int
    frames_forwarded: int
    frames_dropped: int
    keyframe_requests_sent: int
    rooms_opened_total: int
    visits_went_live_total: int
    recordings_finished_total: int
    recording_failures_total: int
    monitors_refused_total: int
    # What the relay sent on (RTP packets and payload bytes) and dropped, over every call.
    frames_forwarded_total: int = 0
    packets_forwarded_total: int = 0
    bytes_forwarded_total: int = 0
    frames_dropped_total: int = 0
    # The server is draining (SIGTERM/SIGINT): no new call opens here.
    draining: bool = False


def visit_quality(visit_id: int, room: VisitRoom | None) -> VisitQuality:
    """Each participant's latest figures from the room (the relay measures every 5 s)."""
    if room is None or room.closed:
        return VisitQuality(visit_id, False, 0, ())
    participants = []
    for role in ROLES:
        report = room.quality(role)
        participants.append(
            ParticipantQuality(
                role=role,
                connected=room.participant(role) is not None,
                video_fps_in=report.video_fps_in if report else None,
                bitrate_in_bps=report.bitrate_in_bps if report else None,
                packets_lost_in=report.packets_lost_in if report else None,
                round_trip_time_s=report.round_trip_time_s if report else None,
            )
        )
    return VisitQuality(visit_id, True, len(room.monitor_ids), tuple(participants))
