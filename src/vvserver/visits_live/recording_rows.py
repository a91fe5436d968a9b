"""The `Recording` row of a recorded visit: created when its room opens, filled at the end.

One row per room opening, each with a directory of its own under `settings.recordings_dir`
(`visit-<id>`, then `visit-<id>-2`, ... if the call is reopened after a restart), stored
relative to that root as the retention job expects. `files` lists every WebM file
(`RecordedFile.to_json()` plus `"kind": "media"`) and the manifest (`"kind": "manifest"`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Recording, RecordingHold, Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.services import Services
from vvserver.media.packet_log import LOG_SUFFIX
from vvserver.media.remux import MANIFEST_NAME, RecordingResult, finalize_recording
from vvserver.visits_live.live_visit import LiveVisit, load_live_visit

logger = logging.getLogger(__name__)

ACTOR = "system:media"
UNFINISHED_STATES = ("interrupted", "recording")


async def create_recording_row(
    session: AsyncSession, live: LiveVisit, root: Path, now: datetime
) -> Recording:
    """A `recording` row with a directory name no earlier room of this visit used (on legal
    hold when the visit's recordings are)."""
    earlier = await session.scalar(
        select(func.count()).select_from(Recording).where(Recording.visit_id == live.id)
    )
    n = int(earlier or 0) + 1
    while True:
        name = f"visit-{live.id}" if n == 1 else f"visit-{live.id}-{n}"
        if not (root / name).exists():
            break
        n += 1
    held = await session.scalar(
        select(RecordingHold.id).where(
            RecordingHold.visit_id == live.id, RecordingHold.lifted_at.is_(None)
        )
    )
    recording = Recording(
        visit_id=live.id,
        facility_id=live.visit.facility_id,
        directory=name,
        files=[],
        state="recording",
        legal_hold=held is not None,
        created_at=now,
    )
    session.add(recording)
    await session.flush()
    return recording


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_entry(manifest: Path) -> dict[str, Any]:
    return {
        "kind": "manifest",
        "name": manifest.name,
        "participant": None,
        "segment": None,
        "duration_s": None,
        "size": manifest.stat().st_size,
        "sha256": _sha256(manifest),
    }


def recording_files(result: RecordingResult) -> list[dict[str, Any]]:
    """The row's `files` for a finalized recording (reads the manifest to hash it)."""
    media = [{"kind": "media", **f.to_json()} for f in result.files]
    return [*media, _manifest_entry(result.manifest)]


def finish_recording_row(
    recording: Recording, files: list[dict[str, Any]], now: datetime, retention_days: int
) -> None:
    recording.files = files
    recording.state = "finished"
    recording.finished_at = now
    recording.purge_after = now + timedelta(days=retention_days)
    recording.legal_hold = recording.legal_hold or False


async def audit_recording_failures(
    services: Services,
    session: AsyncSession,
    recording: Recording,
    failures: list[str],
    now: datetime,
) -> None:
    await services.audit.append(
        session,
        AuditRecord(
            actor=ACTOR,
            action="recording.failure",
            outcome="failure",
            target=f"recording:{recording.id}",
            component="media",
            details={"visit_id": recording.visit_id, "failures": failures},
        ),
        now,
    )


def _files_on_disk(directory: Path) -> list[dict[str, Any]] | None:
    """Finalize leftover logs, or read the manifest a start-up recovery wrote; None: empty."""
    if not directory.is_dir():
        return None
    if any(directory.glob(f"*{LOG_SUFFIX}")):
        return recording_files(finalize_recording(directory))
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        return None
    files: list[dict[str, Any]] = []
    for entry in json.loads(manifest.read_text(encoding="utf-8")).get("files", []):
        path = directory / str(entry["name"])
        if path.parent != directory or not path.is_file():
            logger.warning("recording %s: %s is listed but missing", directory, path.name)
            continue
        # The file on disk is the truth (size and hash), the manifest gives the rest.
        files.append(
            {"kind": "media", **entry, "size": path.stat().st_size, "sha256": _sha256(path)}
        )
    return [*files, _manifest_entry(manifest)]


async def adopt_recovered_recordings(services: Services) -> int:
    """Fill the rows a crash left unfinished from their directories; returns rows finished.

    Rows `interrupted` (by start-up reconciliation) without files, and rows still `recording`
    whose visit is over, are finished with the files found on disk: leftover packet logs are
    remuxed now, a directory `recover_recordings` already finalized is read from its
    manifest, and an empty or missing directory gives a finished row without files. Call at
    start-up, after reconciliation and `recover_recordings`, before any room opens.
    """
    root = services.settings.recordings_dir
    async with services.read() as session:
        rows = (
            await session.execute(
                select(
                    Recording.id, Recording.state, Recording.directory, Recording.files, Visit.state
                )
                .join(Visit, Visit.id == Recording.visit_id)
                .where(Recording.state.in_(UNFINISHED_STATES))
                .order_by(Recording.id)
            )
        ).all()
    adopted = 0
    for recording_id, state, directory, files, visit_state in rows:
        if files or (state == "recording" and visit_state in ACTIVE_VISIT_STATES):
            continue  # filled already, or a call may still be recording into it
        path = (root / directory).resolve()
        if root.resolve() not in path.parents:
            logger.error("recording %s: directory %r is outside %s", recording_id, directory, root)
            continue
        try:
            found = await asyncio.to_thread(_files_on_disk, path)
        except (OSError, ValueError, KeyError) as exc:
            logger.error("recording %s: cannot adopt %s: %s", recording_id, path, exc)
            continue
        now = services.clock.now()
        async with services.write() as session:
            recording = await session.scalar(
                select(Recording).where(Recording.id == recording_id).with_for_update()
            )
            if recording is None or recording.state not in UNFINISHED_STATES or recording.files:
                continue
            live = await load_live_visit(session, recording.visit_id)
            if recording.state == "recording" and live.visit.state in ACTIVE_VISIT_STATES:
                continue
            # Reconciliation dated the interruption; retention counts from then.
            finished_at = recording.finished_at or now
            finish_recording_row(recording, found or [], finished_at, live.rules.retention_days)
        adopted += 1
        logger.info("recording %s adopted: %d files", recording_id, len(found or []))
    return adopted
