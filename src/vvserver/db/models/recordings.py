"""Recordings of visits and the legal holds on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_state_purge", "state", "purge_after"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    directory: Mapped[str] = mapped_column(String(300))
    # [{"name", "participant", "segment", "duration_s", "size", "sha256"}]
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="recording")
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]


class RecordingHold(Base):
    """A legal hold on a visit's recordings (``recordings.legal_hold`` is its effect); lifted
    holds stay as history."""

    __tablename__ = "recording_holds"
    __table_args__ = (
        Index(
            "uq_recording_holds_active",
            "visit_id",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    placed_at: Mapped[datetime]
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    lifted_at: Mapped[datetime | None]
    lift_reason: Mapped[str | None] = mapped_column(Text)
