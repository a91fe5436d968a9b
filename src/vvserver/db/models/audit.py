"""The hash-chained audit log and its signed anchor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


class AuditEntry(Base):
    """Hash-chained audit log (CJIS 5.4.1.1). ``hash`` = SHA-256(prev_hash + canonical entry)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(64))
    component: Mapped[str] = mapped_column(String(40), default="api")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchorRow(Base):
    """The audit chain's head (count, hash), signed with the server secret: one row, written in
    the transaction of every append, so all nodes of a cluster share one anchor."""

    __tablename__ = "audit_anchor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    head: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
