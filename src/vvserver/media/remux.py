"""Turning a visit's packet logs into WebM files plus a manifest, without re-encoding.

Run when a visit ends, and at start-up for logs a crash left behind (`recover_recordings`).
Timestamps come from server arrival time: each track's RTP timestamps give the spacing,
anchored to the arrival clock and re-anchored when the two drift apart (a pause, a stall),
so both participants' files line up through the manifest's wall-clock segment starts.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from vvserver.media.frames import MediaKind, clock_rate
from vvserver.media.packet_log import LOG_SUFFIX, LoggedFrame, SegmentInfo, read_packet_log
from vvserver.media.webm import TimedFrame, WebmWriter, opus_channels, vp8_dimensions

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
REANCHOR_AFTER = 0.5  # seconds of drift between RTP spacing and arrival before re-anchoring
REORDER_WINDOW_MS = 500  # frames are sorted by timestamp within this window


@dataclass(frozen=True, slots=True)
class RecordedFile:
    path: Path
    role: str
    segment: int
    started_at: str  # ISO 8601 UTC wall clock of the file's time 0
    duration_s: float  # from the demuxed packets
    size: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        """The manifest entry; also the shape of an entry in `Recording.files` (db)."""
        return {
            "name": self.path.name,
            "participant": self.role,
            "segment": self.segment,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class RecordingResult:
    directory: Path
    files: tuple[RecordedFile, ...]
    manifest: Path


def _timed(frames: Iterator[LoggedFrame]) -> Iterator[TimedFrame]:
    """Arrival-anchored timestamps (ms), in timestamp order within a small window.

    Each track's timestamps only ever increase: a frame released late (a burst after a stall)
    re-anchors to its arrival, and would otherwise be dated before frames already written.
    """
    anchors: dict[MediaKind, tuple[float, int]] = {}
    last_ms: dict[MediaKind, int] = {}
    pending: list[tuple[int, int, TimedFrame]] = []
    order = itertools.count()
    for frame in frames:
        anchor = anchors.get(frame.kind)
        seconds = frame.arrival
        if anchor is not None:
            delta = (frame.rtp_timestamp - anchor[1]) % (1 << 32)
            if delta >= 1 << 31:
                delta -= 1 << 32
            seconds = anchor[0] + delta / clock_rate(frame.kind)
        if anchor is None or abs(seconds - frame.arrival) > REANCHOR_AFTER:
            anchors[frame.kind] = (frame.arrival, frame.rtp_timestamp)
            seconds = frame.arrival
        ms = max(round(seconds * 1000), last_ms.get(frame.kind, -1) + 1, 0)
        last_ms[frame.kind] = ms
        timed = TimedFrame(frame.kind, ms, frame.keyframe, frame.data)
        heapq.heappush(pending, (timed.timestamp_ms, next(order), timed))
        while pending and pending[0][0] < timed.timestamp_ms - REORDER_WINDOW_MS:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def remux_log(log_path: Path, webm_path: Path) -> SegmentInfo | None:
    """Write the log's frames to `webm_path`; None (and no file) when it holds no media."""
    info, frames = read_packet_log(log_path)
    video_size: tuple[int, int] | None = None
    audio_channels: int | None = None
    for frame in frames:
        if frame.kind == "video" and frame.keyframe and video_size is None:
            video_size = vp8_dimensions(frame.data)
        elif frame.kind == "audio" and audio_channels is None:
            audio_channels = opus_channels(frame.data)
        if video_size is not None and audio_channels is not None:
            break
    if video_size is None and audio_channels is None:
        return None
    temporary = webm_path.with_suffix(".webm.tmp")
    writer = WebmWriter(temporary, video_size=video_size, audio_channels=audio_channels)
    try:
        for timed in _timed(read_packet_log(log_path)[1]):
            writer.add(timed)
    finally:
        writer.close()
    os.replace(temporary, webm_path)
    return info


def demuxed_duration(path: Path) -> float:
    """Seconds from the first to the end of the last packet, over all streams."""
    # PyAV (FFmpeg's libraries, ~20-30 MB resident) loads at the first recording finished,
    # not with this module: start-up imports it only when a crash left logs to recover.
    import av

    start: float | None = None
    end = 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            begins = float(packet.pts * packet.time_base)
            lasts = float((packet.duration or 0) * packet.time_base)
            start = begins if start is None else min(start, begins)
            end = max(end, begins + lasts)
    return 0.0 if start is None else end - start


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def finalize_recording(directory: Path) -> RecordingResult:
    """Remux every packet log in `directory`, write the manifest, then delete the logs.

    Safe to run again after a crash part-way: logs are only deleted once the manifest that
    lists their WebM files is on disk.
    """
    files: list[RecordedFile] = []
    logs = sorted(directory.glob(f"*{LOG_SUFFIX}"))
    for log_path in logs:
        webm_path = log_path.with_suffix(".webm")
        info = remux_log(log_path, webm_path)
        if info is None:
            continue
        files.append(
            RecordedFile(
                path=webm_path,
                role=info.role,
                segment=info.segment,
                started_at=info.started_at.isoformat(),
                duration_s=demuxed_duration(webm_path),
                size=webm_path.stat().st_size,
                sha256=_sha256(webm_path),
            )
        )
    manifest = directory / MANIFEST_NAME
    temporary = manifest.with_suffix(".json.tmp")
    temporary.write_text(
        json.dumps({"files": [f.to_json() for f in files]}, indent=2), encoding="utf-8"
    )
    os.replace(temporary, manifest)
    for log_path in logs:
        log_path.unlink()
    logger.info("recording %s finalized: %d files", directory, len(files))
    return RecordingResult(directory, tuple(files), manifest)


def recover_recordings(root: Path, skip: Collection[str] = ()) -> list[RecordingResult]:
    """Finalize recordings left unfinished by a crash (directories still holding logs).

    ``skip``: directory names another live server is still recording into (a cluster with a
    shared recordings directory).
    """
    results: list[RecordingResult] = []
    if not root.is_dir():
        return results
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if directory.name in skip:
            continue
        if any(directory.glob(f"*{LOG_SUFFIX}")):
            logger.warning("recovering the unfinished recording in %s", directory)
            results.append(finalize_recording(directory))
    return results
