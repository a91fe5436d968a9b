"""Hash-chained audit log with anchors outside the table.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's canonical JSON.
Entries are appended inside the caller's write transaction, which is serialised (SQLite write lock,
PostgreSQL advisory lock), so the chain never forks, whichever process or node appends. The head
(count, hash), signed with an HMAC of the server secret, is kept in two places, so deleting the
newest rows is detected too:

* the ``audit_anchor`` row, written in the same transaction as the append: one anchor for every
  process and node of a cluster, always the chain's true head;
* ``audit-anchor.json`` in the data dir, written after commit: this machine's witness outside
  the database (a database administrator who deletes the newest rows and puts back an older
  signed anchor row is caught by any node's file that anchored a later head).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import AuditAnchorRow, AuditEntry

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_ADVISORY_KEY = 7_420_001
ANCHOR_ROW_ID = 1


def entry_digest(prev_hash: str, entry: AuditEntry) -> str:
    canonical = json.dumps(
        {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "actor": entry.actor,
            "action": entry.action,
            "target": entry.target,
            "outcome": entry.outcome,
            "request_id": entry.request_id,
            "component": entry.component,
            "details": entry.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    actor: str
    action: str
    outcome: str
    target: str | None = None
    request_id: str | None = None
    component: str = "api"
    details: dict[str, Any] | None = None


class AuditAnchor:
    """The head of the chain, kept in a file beside the database and signed with the secret."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = path
        self._secret = secret

    def sign(self, count: int, head: str) -> str:
        return hmac.new(self._secret, f"{count}:{head}".encode(), hashlib.sha256).hexdigest()

    def check(self, count: int, head: str, mac: str) -> tuple[int, str]:
        if not hmac.compare_digest(self.sign(count, head), mac):
            raise ValueError("audit anchor signature mismatch")
        return count, head

    def read(self) -> tuple[int, str] | None:
        if not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        return self.check(int(data["count"]), str(data["head"]), str(data["mac"]))

    async def read_row(self, session: AsyncSession) -> tuple[int, str] | None:
        """The anchor row every node shares (None: nothing appended since it exists)."""
        row = (
            await session.execute(
                select(AuditAnchorRow.count, AuditAnchorRow.head, AuditAnchorRow.mac).where(
                    AuditAnchorRow.id == ANCHOR_ROW_ID
                )
            )
        ).first()
        return None if row is None else self.check(int(row[0]), str(row[1]), str(row[2]))

    async def write_row(self, session: AsyncSession, count: int, head: str) -> None:
        """Move the shared anchor to (count, head): inside the append's serialised
        transaction, so it always names the chain's head and commits (or not) with it."""
        values = {"count": count, "head": head, "mac": self.sign(count, head)}
        moved = await session.execute(
            update(AuditAnchorRow)
            .where(AuditAnchorRow.id == ANCHOR_ROW_ID)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) == 0:
            await session.execute(insert(AuditAnchorRow).values(id=ANCHOR_ROW_ID, **values))

    def write(self, count: int, head: str) -> None:
        # Worker processes of one machine share the file: read, compare and replace it under
        # an exclusive lock, through a temporary file of this process's own.
        with self.path.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.read()
            except (ValueError, KeyError, json.JSONDecodeError):
                current = None
            if current is not None and current[0] >= count:
                return  # another writer already anchored a later head
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            signed = {"count": count, "head": head, "mac": self.sign(count, head)}
            tmp.write_text(json.dumps(signed))
            os.replace(tmp, self.path)


class AuditLog:
    def __init__(self, anchor: AuditAnchor) -> None:
        self.anchor = anchor

    async def append(self, session: AsyncSession, record: AuditRecord, at: datetime) -> AuditEntry:
        """Append inside the caller's write transaction; call ``anchor_after_commit`` after it."""
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        head = (
            await session.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
            )
        ).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        entry = AuditEntry(
            seq=seq,
            at=at,
            actor=record.actor,
            action=record.action,
            target=record.target,
            outcome=record.outcome,
            request_id=record.request_id,
            component=record.component,
            details=record.details or {},
            prev_hash=prev,
            hash="",
        )
        entry.hash = entry_digest(prev, entry)
        session.add(entry)
        await session.flush()
        await self.anchor.write_row(session, seq, entry.hash)
        session.info.setdefault("vv_audit_heads", []).append((seq, entry.hash))
        return entry

    def anchor_after_commit(self, session: AsyncSession) -> None:
        heads: list[tuple[int, str]] = session.info.pop("vv_audit_heads", [])
        if heads:
            seq, digest = max(heads)
            self.anchor.write(seq, digest)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    first_broken_seq: int | None = None
    problem: str | None = None


async def verify_chain(session: AsyncSession, anchor: AuditAnchor) -> VerifyResult:
    """Walk the whole chain; report the first broken link, or rows missing against the anchor."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    result = await session.stream(select(AuditEntry).order_by(AuditEntry.seq))
    async for entry in result.scalars():
        if entry.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev:
            return VerifyResult(False, count, entry.seq, "previous-hash link broken")
        if entry_digest(prev, entry) != entry.hash:
            return VerifyResult(False, count, entry.seq, "entry content does not match its hash")
        prev = entry.hash
        expected_seq += 1
        count += 1
    for where, read in (("anchor", anchor.read_row), ("anchor file", _read_file(anchor))):
        try:
            anchored = await read(session)
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            return VerifyResult(False, count, None, f"{where} unreadable: {exc}")
        if anchored is None:
            continue
        a_count, a_head = anchored
        if count < a_count:
            return VerifyResult(
                False, count, count + 1, f"{a_count - count} newest entries deleted ({where})"
            )
        anchored_hash = (
            await session.execute(select(AuditEntry.hash).where(AuditEntry.seq == a_count))
        ).scalar_one_or_none()
        if anchored_hash != a_head:
            return VerifyResult(False, count, a_count, f"{where}: head hash does not match")
    return VerifyResult(True, count)


def _read_file(anchor: AuditAnchor) -> Callable[[AsyncSession], Awaitable[tuple[int, str] | None]]:
    async def read(_session: AsyncSession) -> tuple[int, str] | None:
        return anchor.read()

    return read


async def audit_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one())
