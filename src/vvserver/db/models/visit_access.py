"""Who may visit, and when: visitor bans, approved-visitor lists and blackouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


class VisitorBan(Base):
    __tablename__ = "visitor_bans"
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    ends_at: Mapped[datetime]
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]


class Approval(Base):
    """A visitor on a person's approved-visitor list (or asking to be)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("person_id", "visitor_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    relationship: Mapped[str] = mapped_column(String(100))
    professional: Mapped[str] = mapped_column(String(16), default="none")
    bar_number: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Blackout(Base):
    __tablename__ = "blackouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("housing_units.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime]
