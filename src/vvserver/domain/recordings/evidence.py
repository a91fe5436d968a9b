"""Evidence export: a visit's recording as a zip with a SHA-256 manifest.

The zip holds every WebM file of the visit's finished recordings, ``manifest.json`` (the
visit, its participants, each file with its SHA-256, size and offset on the recording's
timeline, the flags, ``legal_hold``: whether it was under legal hold and every hold's record,
who exported it and when) and ``SHA256SUMS`` (``sha256sum -c`` format,
covering the WebM files and the manifest). Each file is hashed again while it is copied into
the zip; a file whose bytes no longer match the hash stored when the recording finished stops
the export (audited as a failure), so an export never carries altered media unnoticed.
Every export is audited (``recording.export``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vvserver.db.models import Account, Facility, Kiosk, Person, Recording, Visit
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import Conflict, NotFound
from vvserver.domain.recordings.holds import hold_history
from vvserver.domain.recordings.playback import (
    file_path,
    media_files,
    playback_tracks,
    visit_flags,
    visit_recordings,
)
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    arcname: str
    path: Path
    sha256: str


@dataclass(frozen=True, slots=True)
class EvidenceZip:
    """A finished zip in a temporary file; the caller streams it and then calls ``discard``."""

    path: Path
    filename: str
    size: int
    manifest_sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class IntegrityFailure(Conflict):
    code = "recording_altered"


def _write_zip(target: Path, files: list[EvidenceFile], manifest: bytes) -> None:
    """Copy the files into the zip (stored: WebM is compressed already), checking each hash."""
    sums: list[str] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for item in files:
            digest = hashlib.sha256()
            with (
                item.path.open("rb") as source,
                zf.open(item.arcname, "w", force_zip64=True) as out,
            ):
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != item.sha256:
                raise IntegrityFailure(
                    f"{item.arcname} does not match the SHA-256 stored when it was recorded"
                )
            sums.append(f"{item.sha256}  {item.arcname}\n")
        zf.writestr(MANIFEST, manifest)
        sums.append(f"{hashlib.sha256(manifest).hexdigest()}  {MANIFEST}\n")
        zf.writestr(SUMS, "".join(sums))


def _build_zip(directory: Path, files: list[EvidenceFile], manifest: bytes) -> tuple[Path, int]:
    """The zip in a new temporary file under ``directory``; removed again if it fails."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="evidence-", suffix=".zip", dir=directory)
    os.close(handle)
    target = Path(name)
    try:
        _write_zip(target, files, manifest)
        return target, target.stat().st_size
    except BaseException:
        target.unlink(missing_ok=True)
        raise


async def _describe_visit(services: Services, visit: Visit) -> dict[str, Any]:
    async with services.read() as session:
        facility = await session.get(Facility, visit.facility_id)
        person = await session.get(Person, visit.person_id)
        visitor = await session.get(Account, visit.visitor_id)
        kiosk = await session.get(Kiosk, visit.kiosk_id)
    if facility is None or person is None or visitor is None or kiosk is None:
        raise NotFound("no such visit")
    return {
        "id": visit.id,
        "facility": {"id": facility.id, "name": facility.name, "timezone": facility.timezone},
        "start_at": visit.start_at.isoformat(),
        "end_at": visit.end_at.isoformat(),
        "state": visit.state,
        "end_reason": visit.end_reason,
        "privileged": visit.privileged,
        "participants": {
            "person": {
                "id": person.id,
                "name": f"{person.first_name} {person.last_name}",
                "booking_number": person.booking_number,
            },
            "visitor": {"id": visitor.id, "name": visitor.name, "email": visitor.email},
            "kiosk": {"id": kiosk.id, "name": kiosk.name},
        },
    }


async def _hold_statement(
    services: Services, visit_id: int, recordings: list[Recording]
) -> dict[str, Any]:
    """Whether the recording was under legal hold when exported, and every hold's record."""
    async with services.read() as session:
        holds = await hold_history(session, visit_id)
    return {
        "under_hold": any(r.legal_hold for r in recordings),
        "holds": [
            {
                "id": hold.id,
                "reason": hold.reason,
                "placed_by": hold.placed_by,
                "placed_at": hold.placed_at.isoformat(),
                "lifted_by": hold.lifted_by,
                "lifted_at": hold.lifted_at.isoformat() if hold.lifted_at else None,
                "lift_reason": hold.lift_reason,
            }
            for hold in holds
        ],
    }


def _arcnames(recordings: list[Recording]) -> dict[tuple[int, str], str]:
    """Plain file names for one recording; ``<directory>/<name>`` when the room reopened."""
    single = len(recordings) == 1
    return {
        (r.id, f.name): f.name if single else f"{r.directory}/{f.name}"
        for r in recordings
        for f in media_files(r)
    }


async def export_evidence(services: Services, caller: Caller, visit_id: int) -> EvidenceZip:
    """Build the visit's evidence zip (audited ``recording.export``, failures included)."""
    found = await visit_recordings(services, caller, visit_id, "recording.export")
    visit, recordings = found.visit, found.recordings
    root = services.settings.recordings_dir
    names = _arcnames(recordings)
    origin, tracks = playback_tracks(recordings)
    by_id = {r.id: r for r in recordings}
    files: list[EvidenceFile] = []
    for track in tracks:
        path = file_path(root, by_id[track.recording_id], track.name)
        files.append(EvidenceFile(names[(track.recording_id, track.name)], path, track.sha256))
    now = services.clock.now()
    principal = caller.principal
    manifest: dict[str, Any] = {
        "format": "vvserver-evidence/1",
        "visit": await _describe_visit(services, visit),
        "participants": sorted({t.participant for t in tracks}),
        "recordings": [
            {
                "id": r.id,
                "directory": r.directory,
                "created_at": r.created_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "legal_hold": r.legal_hold,
            }
            for r in recordings
        ],
        "legal_hold": await _hold_statement(services, visit.id, recordings),
        "started_at": origin.isoformat() if origin else None,
        "files": [
            {
                "name": names[(t.recording_id, t.name)],
                "recording_id": t.recording_id,
                "participant": t.participant,
                "segment": t.segment,
                "offset_s": t.offset_s,
                "duration_s": t.duration_s,
                "size": t.size_bytes,
                "sha256": t.sha256,
            }
            for t in tracks
        ],
        "flags": [
            {
                "id": flag.id,
                "at": flag.at.isoformat(),
                "offset_s": round(max(0.0, (flag.at - origin).total_seconds()), 3)
                if origin
                else 0.0,
                "visit_offset_s": flag.offset_s,
                "note": flag.note,
            }
            for flag in await visit_flags(services, visit.id)
        ],
        "exported_by": {
            "id": principal.account_id,
            "email": principal.email,
            "role": principal.role,
        },
        "exported_at": now.isoformat(),
    }
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    try:
        target, size = await asyncio.to_thread(
            _build_zip, services.settings.data_dir, files, manifest_bytes
        )
    except (IntegrityFailure, OSError) as exc:
        await _audit(services, caller, visit.id, "failure", {"error": str(exc)}, now)
        if isinstance(exc, IntegrityFailure):
            logger.error("evidence export of visit %s refused: %s", visit.id, exc)
            raise
        logger.exception("evidence export of visit %s failed", visit.id)
        if isinstance(exc, FileNotFoundError):
            raise NotFound("a file of the recording is missing", code="file_missing") from exc
        raise Conflict("the recording could not be read", code="recording_unreadable") from exc
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    await _audit(
        services,
        caller,
        visit.id,
        "success",
        {"files": len(files), "manifest_sha256": manifest_sha, "exported_at": now.isoformat()},
        now,
    )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return EvidenceZip(target, f"visit-{visit.id}-evidence-{stamp}.zip", size, manifest_sha)


async def _audit(
    services: Services,
    caller: Caller,
    visit_id: int,
    outcome: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                "recording.export", outcome=outcome, target=f"visit:{visit_id}", details=details
            ),
            now,
        )
