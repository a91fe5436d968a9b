"""Recording retention: compute ``purge_after`` and purge expired recordings.

A finished recording is kept ``retention_days`` (the visit's unit rules) after it finished, then
its directory is deleted, unless it is under legal hold. Each recording owns one directory, which
must lie inside ``<data_dir>/recordings``; anything else is refused (and audited), never deleted.
File deletion happens with the row locked and is idempotent, so a crash before the commit just
deletes nothing the next time and records the purge then.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Recording, Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.services import Services
from vvserver.scheduling.base import ACTOR, BATCH_SIZE, SchedulerReport
from vvserver.scheduling.rulebook import RuleBook
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"


def recording_path(settings: Settings, directory: str) -> Path | None:
    """The recording's directory, resolved; None when it is not strictly inside the root."""
    root = (settings.data_dir / RECORDINGS_DIR).resolve()
    raw = Path(directory)
    resolved = (raw if raw.is_absolute() else root / raw).resolve()
    if resolved == root or root not in resolved.parents:
        return None
    return resolved


def _delete_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


async def set_purge_dates(
    services: Services, book: RuleBook, now: datetime, report: SchedulerReport
) -> None:
    """Finished recordings without ``purge_after``: finished_at + retention_days."""
    async with services.write() as session:
        rows = (
            await session.execute(
                select(Recording, Visit.unit_id)
                .join(Visit, Visit.id == Recording.visit_id)
                .where(Recording.state == "finished", Recording.purge_after.is_(None))
                .order_by(Recording.id)
                .limit(BATCH_SIZE)
                .with_for_update(of=Recording, skip_locked=True)
            )
        ).all()
        for recording, unit_id in rows:
            retention = timedelta(days=book.for_unit(unit_id).retention_days)
            recording.purge_after = (recording.finished_at or recording.created_at) + retention
    report.note_batch(rows)
    report.purge_after_set += len(rows)


async def _audit(
    services: Services,
    session: AsyncSession,
    recording: Recording,
    outcome: str,
    now: datetime,
    **details: object,
) -> None:
    await services.audit.append(
        session,
        AuditRecord(
            actor=ACTOR,
            action="recording.purge",
            outcome=outcome,
            target=f"recording:{recording.id}",
            component="scheduler",
            details={"visit_id": recording.visit_id, "directory": recording.directory, **details},
        ),
        now,
    )


async def _purge_one(services: Services, recording_id: int, now: datetime) -> str | None:
    async with services.write() as session:
        recording = await session.scalar(
            select(Recording).where(Recording.id == recording_id).with_for_update(skip_locked=True)
        )
        if (
            recording is None
            or recording.state != "finished"
            or recording.legal_hold
            or recording.purged_at is not None
            or recording.purge_after is None
            or recording.purge_after > now
        ):
            return None
        path = recording_path(services.settings, recording.directory)
        if path is None:
            logger.error(
                "recording %s: directory %r is outside the recordings folder; not deleting it",
                recording.id,
                recording.directory,
            )
            recording.state = "purge_refused"
            await _audit(services, session, recording, "failure", now, reason="outside_recordings")
            return "refused"
        await asyncio.to_thread(_delete_tree, path)
        recording.state = "purged"
        recording.purged_at = now
        await _audit(services, session, recording, "success", now, files=len(recording.files))
    logger.info("recording %s purged (%s)", recording_id, path)
    return "purged"


async def purge_expired(services: Services, now: datetime, report: SchedulerReport) -> None:
    query = (
        select(Recording.id)
        .where(
            Recording.state == "finished",
            Recording.purge_after <= now,
            Recording.legal_hold.is_(False),
            Recording.purged_at.is_(None),
        )
        .order_by(Recording.purge_after)
        .limit(BATCH_SIZE)
    )
    async with services.read() as session:
        ids = list((await session.scalars(query)).all())
    report.note_batch(ids)
    for recording_id in ids:
        try:
            outcome = await _purge_one(services, recording_id, now)
        except Exception:
            report.errors += 1
            logger.exception("purging recording %s failed", recording_id)
            continue
        if outcome == "purged":
            report.recordings_purged += 1
        elif outcome == "refused":
            report.purges_refused += 1
