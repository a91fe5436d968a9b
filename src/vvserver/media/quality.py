"""Per-participant quality figures from the relay's counters and aiortc's RTCP statistics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiortc import RTCPeerConnection
from aiortc.stats import RTCInboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from vvserver.media.forwarding import Feed
from vvserver.media.room_events import QualityReport, Role


@dataclass(frozen=True, slots=True)
class _Counters:
    at: float
    video_frames: int
    bytes_in: int
    packets_lost: int = 0  # cumulative, from RTCP statistics


class QualityMeter:
    """Turns cumulative counters into rates between two samples of one participant."""

    def __init__(self, visit_id: int, role: Role, video: Feed, audio: Feed) -> None:
        self._visit_id = visit_id
        self._role = role
        self._video = video
        self._audio = audio
        self._previous: _Counters | None = None

    def _counters(self) -> _Counters:
        return _Counters(
            at=asyncio.get_running_loop().time(),
            video_frames=self._video.frames_in,
            bytes_in=self._video.bytes_in + self._audio.bytes_in,
        )

    async def sample(self, pc: RTCPeerConnection) -> QualityReport | None:
        """A report covering the time since the previous sample (None on the first call)."""
        counted = self._counters()
        packets_lost = 0
        round_trip_times: list[float] = []
        for stats in (await pc.getStats()).values():
            if isinstance(stats, RTCInboundRtpStreamStats):
                packets_lost += max(0, stats.packetsLost)
            elif (
                isinstance(stats, RTCRemoteInboundRtpStreamStats)
                and stats.roundTripTime is not None
            ):
                round_trip_times.append(stats.roundTripTime)
        current = _Counters(counted.at, counted.video_frames, counted.bytes_in, packets_lost)
        previous, self._previous = self._previous, current
        if previous is None or current.at <= previous.at:
            return None
        seconds = current.at - previous.at
        return QualityReport(
            visit_id=self._visit_id,
            role=self._role,
            video_fps_in=(current.video_frames - previous.video_frames) / seconds,
            bitrate_in_bps=(current.bytes_in - previous.bytes_in) * 8 / seconds,
            packets_lost_in=max(0, current.packets_lost - previous.packets_lost),
            round_trip_time_s=max(round_trip_times) if round_trip_times else None,
        )
