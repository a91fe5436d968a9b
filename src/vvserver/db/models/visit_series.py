"""Standing weekly visits and what happened to each week of one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


class VisitSeries(Base):
    """A standing weekly visit: every ``weekday`` at ``local_time`` (facility-local) with a person.

    The scheduler books each occurrence when its booking window opens; ``next_date`` is the local
    date of the next occurrence not yet handled, ``next_start_at`` its UTC start (the index the
    scheduler walks; recomputed from ``next_date`` in the facility's zone when it is handled).
    """

    __tablename__ = "visit_series"
    __table_args__ = (Index("ix_visit_series_state_next", "state", "next_start_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    local_time: Mapped[str] = mapped_column(String(5))  # "HH:MM"
    minors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="active")
    next_date: Mapped[date] = mapped_column(Date)
    next_start_at: Mapped[datetime]
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SeriesOccurrence(Base):
    """What happened to one week of a series: booked (``visit_id``) or skipped (why, and the
    nearest free slots offered instead)."""

    __tablename__ = "series_occurrences"
    __table_args__ = (
        UniqueConstraint("series_id", "local_date", name="uq_series_occurrences_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("visit_series.id"))
    local_date: Mapped[date] = mapped_column(Date)
    start_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # "booked" | "skipped"
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    # [{"start": UTC ISO, "end": UTC ISO}] nearest free slots when skipped.
    alternatives: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
