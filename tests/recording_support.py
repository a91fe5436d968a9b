"""Real recordings for API tests: packet logs of the sample clip, remuxed to WebM by the
project's own pipeline (`finalize_recording`), with the `Recording` row the media service
writes when a call ends (`recording_files`, `finish_recording_row`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from vvserver.client.sample_clip import Clip, load_clip
from vvserver.db.models import Recording, Visit
from vvserver.domain.services import Services
from vvserver.media.frames import EncodedFrame
from vvserver.media.packet_log import LOG_SUFFIX, PacketLogWriter, SegmentInfo
from vvserver.media.remux import finalize_recording
from vvserver.visits_live.recording_rows import finish_recording_row, recording_files


@dataclass(frozen=True)
class Segment:
    """One participant's connection segment: starts ``offset_s`` after the visit's start."""

    participant: str
    segment: int
    offset_s: float
    seconds: float


BOTH_SIDES = (Segment("kiosk", 1, 0.0, 1.0), Segment("visitor", 1, 0.5, 1.0))


def write_segment_log(
    path: Path, clip: Clip, visit_id: int, segment: Segment, started_at: datetime
) -> None:
    """A packet log as the recorder writes it: the clip's frames at real-time arrival."""
    info = SegmentInfo(visit_id, segment.participant, segment.segment, started_at)
    writer = PacketLogWriter(path, info, origin=100.0)
    frames: list[EncodedFrame] = []
    for n in range(round(segment.seconds * 30)):
        source = clip.video[n % len(clip.video)]
        frames.append(
            EncodedFrame("video", source.data, n * 3000, source.keyframe, 1, 100 + n / 30)
        )
    for n in range(round(segment.seconds * 50)):
        source = clip.audio[n % len(clip.audio)]
        frames.append(EncodedFrame("audio", source.data, n * 960, True, 2, 100 + n / 50))
    for frame in sorted(frames, key=lambda f: f.arrival):
        writer.write(frame)
    writer.close()


def _record(
    directory: Path, visit_id: int, start: datetime, segments: tuple[Segment, ...]
) -> list[dict[str, Any]]:
    clip = load_clip()
    directory.mkdir(parents=True, exist_ok=True)
    for seg in segments:
        log = directory / f"{seg.participant}-{seg.segment:03d}{LOG_SUFFIX}"
        at = start + timedelta(seconds=seg.offset_s)
        write_segment_log(log, clip, visit_id, seg, at)
    return recording_files(finalize_recording(directory))


async def record_visit(
    services: Services,
    visit_id: int,
    *,
    segments: tuple[Segment, ...] = BOTH_SIDES,
    directory: str | None = None,
) -> int:
    """Write a finished recording of the visit (files on disk and its row); its row id."""
    async with services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        start, facility_id = visit.start_at, visit.facility_id
    name = directory or f"visit-{visit_id}"
    root = services.settings.recordings_dir
    files = await asyncio.to_thread(_record, root / name, visit_id, start, segments)
    now = services.clock.now()
    async with services.write() as session:
        recording = Recording(
            visit_id=visit_id,
            facility_id=facility_id,
            directory=name,
            files=[],
            state="recording",
            legal_hold=False,
            created_at=start,
        )
        session.add(recording)
        await session.flush()
        finish_recording_row(recording, files, now, retention_days=30)
        return recording.id
