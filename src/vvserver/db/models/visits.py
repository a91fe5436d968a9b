"""Visits: the visit row, its state changes, flagged moments and chat messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base

# ``ringing``: an on-demand visit waiting to be answered (see domain.visits.on_demand).
ACTIVE_VISIT_STATES = ("ringing", "scheduled", "ready", "live")
_ACTIVE_SQL = "state IN ('ringing', 'scheduled', 'ready', 'live')"


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        # Backstop for the booking lock: one active visit per kiosk and slot start.
        Index(
            "uq_visits_kiosk_start_active",
            "kiosk_id",
            "start_at",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_visits_state_start", "state", "start_at"),
        Index("ix_visits_unit_start", "unit_id", "start_at"),
        Index("ix_visits_person_start", "person_id", "start_at"),
        Index("ix_visits_visitor_start", "visitor_id", "start_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("housing_units.id"))
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    # Minors declared as additional people present: [{"name": ..., "date_of_birth": ...}].
    minors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Credit make-up visits do not count against weekly limits.
    makeup_for_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    # SHA-256 of the current join token; rescheduling replaces it, so old links stop working.
    join_token_hash: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(Text)
    # Counts against weekly limits (completed, no_show, conduct terminations).
    counts_toward_limit: Mapped[bool] = mapped_column(Boolean, default=True)
    missing_side: Mapped[str | None] = mapped_column(String(16))
    visitor_connected_s: Mapped[float] = mapped_column(default=0.0)
    kiosk_connected_s: Mapped[float] = mapped_column(default=0.0)
    visitor_lost_s: Mapped[float] = mapped_column(default=0.0)
    kiosk_lost_s: Mapped[float] = mapped_column(default=0.0)
    visitor_joined_at: Mapped[datetime | None]
    kiosk_joined_at: Mapped[datetime | None]
    # The call ledger while a call is open: connected/lost seconds above are accounted up to
    # `ledger_at` (written every second), and a side "in call" (connected, or losing time)
    # at that moment loses the time until its media returns if the server stops or crashes.
    ledger_at: Mapped[datetime | None]
    visitor_in_call: Mapped[bool] = mapped_column(Boolean, default=False)
    kiosk_in_call: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    # Timed-work bookkeeping for the durable scheduler (set once the job ran).
    reminder_sent_at: Mapped[datetime | None]
    start_pushed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Visit now: who started it ("visitor" or "kiosk"); null for a booked visit.
    on_demand: Mapped[str | None] = mapped_column(String(8), default=None)
    # While ``ringing``: when the unanswered ring ends the visit as ``declined``.
    ring_until: Mapped[datetime | None] = mapped_column(default=None)
    # Never counts against weekly limits (an on-demand visit where the rules say so).
    limit_exempt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class VisitTransition(Base):
    """Every state change of a visit, with actor and reason."""

    __tablename__ = "visit_transitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)


class VisitFlag(Base):
    """A moment of a visit flagged by staff, with its offset from the visit's start."""

    __tablename__ = "visit_flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    at: Mapped[datetime]
    offset_s: Mapped[float]
    note: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))


class VisitMessage(Base):
    """A text chat message sent during a live visit (kept with the visit, like its recording)."""

    __tablename__ = "visit_messages"
    __table_args__ = (Index("ix_visit_messages_visit_id", "visit_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    sender: Mapped[str] = mapped_column(String(16))  # "visitor" | "kiosk"
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
