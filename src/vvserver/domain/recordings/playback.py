"""Finished recordings for staff: the playback manifest of a visit and file lookup.

A visit's recording is one `Recording` row per room opening (see
`vvserver.visits_live.recording_rows`), each with a directory of WebM files, one per
participant and connection segment, whose wall-clock starts (``started_at``) align them.
Staff see recordings of facilities in their scope; privileged visits are never recorded, and
asking for one is refused and audited. Every playback is audited (searches: `recording_search`);
files are looked up by name in the row's file list, never by joining user input to a path.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Facility, Recording, Visit, VisitFlag
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One WebM file of a recording, as listed in `Recording.files`."""

    name: str
    participant: str
    segment: int
    started_at: datetime
    duration_s: float
    size: int
    sha256: str


def media_files(recording: Recording) -> list[MediaFile]:
    """The recording's WebM files (entries that are not media, or malformed, are skipped)."""
    files: list[MediaFile] = []
    for entry in recording.files or []:
        if not isinstance(entry, dict) or entry.get("kind", "media") != "media":
            continue
        try:
            started = datetime.fromisoformat(str(entry["started_at"]))
            files.append(
                MediaFile(
                    name=str(entry["name"]),
                    participant=str(entry["participant"]),
                    segment=int(entry["segment"]),
                    started_at=started if started.tzinfo else started.replace(tzinfo=UTC),
                    duration_s=float(entry.get("duration_s") or 0.0),
                    size=int(entry["size"]),
                    sha256=str(entry["sha256"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            logger.warning("recording %s: malformed file entry %r", recording.id, entry)
    return sorted(files, key=lambda f: (f.started_at, f.participant, f.segment))


def recording_span(files: list[MediaFile]) -> tuple[datetime | None, float]:
    """When the first file starts, and seconds from then to the end of the last one."""
    if not files:
        return None, 0.0
    start = min(f.started_at for f in files)
    end = max(f.started_at + timedelta(seconds=f.duration_s) for f in files)
    return start, round((end - start).total_seconds(), 3)


# --------------------------------------------------------------------------- one visit


async def _visit_in_scope(session: AsyncSession, principal: Principal, visit_id: int) -> Visit:
    if not principal.is_staff:
        raise NotFound("no such visit")
    visit = await session.get(Visit, visit_id)
    if visit is None:
        raise NotFound("no such visit")
    facility = await session.get(Facility, visit.facility_id)
    if facility is None:
        raise NotFound("no such visit")
    principal.ensure_facility(facility.id, facility.agency_id)
    return visit


async def refuse_privileged(services: Services, caller: Caller, action: str, visit_id: int) -> None:
    """Audit an attempt on a privileged visit's recording, then refuse it (403)."""
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                action,
                outcome="failure",
                target=f"visit:{visit_id}",
                details={"code": "privileged_visit"},
            ),
            services.clock.now(),
        )
    logger.warning("%s refused: %s on privileged visit %s", caller.actor, action, visit_id)
    raise Forbidden("privileged visits are never recorded", code="privileged_visit")


@dataclass(frozen=True, slots=True)
class VisitRecordings:
    visit: Visit
    recordings: list[Recording]


async def visit_recordings(
    services: Services, caller: Caller, visit_id: int, action: str
) -> VisitRecordings:
    """The visit (in scope) and its finished recordings; refusals for privileged or none."""
    async with services.read() as session:
        visit = await _visit_in_scope(session, caller.principal, visit_id)
        recordings = list(
            await session.scalars(
                select(Recording)
                .where(Recording.visit_id == visit.id, Recording.purged_at.is_(None))
                .order_by(Recording.id)
            )
        )
    if visit.privileged:
        await refuse_privileged(services, caller, action, visit_id)
    finished = [r for r in recordings if r.state == FINISHED]
    if not finished:
        if recordings:
            raise Conflict("the recording is not finished yet", code="recording_in_progress")
        raise NotFound("this visit has no recording", code="no_recording")
    return VisitRecordings(visit, finished)


@dataclass(frozen=True, slots=True)
class PlaybackTrack:
    recording_id: int
    participant: str
    segment: int
    name: str
    offset_s: float
    duration_s: float
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PlaybackFlag:
    id: int
    offset_s: float  # on the recording's timeline (seconds from ``started_at``)
    visit_offset_s: float  # from the visit's slot start, as stored with the flag
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Playback:
    visit_id: int
    recording_id: int
    started_at: datetime
    tracks: list[PlaybackTrack]
    flags: list[PlaybackFlag]


def playback_tracks(recordings: list[Recording]) -> tuple[datetime | None, list[PlaybackTrack]]:
    """Every file of the visit's recordings on one timeline from the earliest file's start."""
    per_recording = [(r, media_files(r)) for r in recordings]
    starts = [f.started_at for _, files in per_recording for f in files]
    if not starts:
        return None, []
    origin = min(starts)
    tracks = [
        PlaybackTrack(
            recording_id=recording.id,
            participant=f.participant,
            segment=f.segment,
            name=f.name,
            offset_s=round((f.started_at - origin).total_seconds(), 3),
            duration_s=f.duration_s,
            size_bytes=f.size,
            sha256=f.sha256,
        )
        for recording, files in per_recording
        for f in files
    ]
    tracks.sort(key=lambda t: (t.offset_s, t.participant, t.segment))
    return origin, tracks


async def visit_flags(services: Services, visit_id: int) -> list[VisitFlag]:
    async with services.read() as session:
        return list(
            await session.scalars(
                select(VisitFlag)
                .where(VisitFlag.visit_id == visit_id)
                .order_by(VisitFlag.at, VisitFlag.id)
            )
        )


async def playback_manifest(services: Services, caller: Caller, visit_id: int) -> Playback:
    """What a player needs to play both sides in sync, with the flags (audited
    ``recording.play``)."""
    found = await visit_recordings(services, caller, visit_id, "recording.play")
    origin, tracks = playback_tracks(found.recordings)
    started_at = origin or found.recordings[0].created_at
    flags = [
        PlaybackFlag(
            id=flag.id,
            offset_s=round(max(0.0, (flag.at - started_at).total_seconds()), 3),
            visit_offset_s=flag.offset_s,
            note=flag.note,
            at=flag.at,
        )
        for flag in await visit_flags(services, visit_id)
    ]
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                "recording.play",
                target=f"visit:{visit_id}",
                details={
                    "recording_ids": [r.id for r in found.recordings],
                    "files": len(tracks),
                },
            ),
            services.clock.now(),
        )
    return Playback(visit_id, found.recordings[0].id, started_at, tracks, flags)


# --------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    name: str
    size: int
    sha256: str


def file_path(root: Path, recording: Recording, name: str) -> Path:
    """The path of a file the row lists, checked to lie inside the recordings root."""
    resolved_root = root.resolve()
    directory = (resolved_root / recording.directory).resolve()
    path = (directory / name).resolve()
    if resolved_root not in directory.parents or path.parent != directory or path.name != name:
        raise NotFound("no such file")
    return path


async def recording_file(
    services: Services, principal: Principal, recording_id: int, name: str
) -> StoredFile:
    """A WebM file of a finished recording in scope, looked up by its listed name."""
    if not principal.is_staff:
        raise NotFound("no such recording")
    async with services.read() as session:
        recording = await session.get(Recording, recording_id)
        if recording is None:
            raise NotFound("no such recording")
        facility = await session.get(Facility, recording.facility_id)
        visit = await session.get(Visit, recording.visit_id)
        if facility is None or visit is None or visit.privileged:
            raise NotFound("no such recording")
        principal.ensure_facility(facility.id, facility.agency_id)
    if recording.state != FINISHED or recording.purged_at is not None:
        raise NotFound("no such recording")
    listed = next((f for f in media_files(recording) if f.name == name), None)
    if listed is None:
        raise NotFound("no such file in this recording")
    path = file_path(services.settings.recordings_dir, recording, listed.name)
    size = await asyncio.to_thread(_size_of, path)
    if size is None:
        logger.error("recording %s: listed file %s is missing", recording.id, path)
        raise NotFound("the file is missing", code="file_missing")
    return StoredFile(path, listed.name, size, listed.sha256)


def _size_of(path: Path) -> int | None:
    """The size of a regular file; None when there is none at ``path``."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
