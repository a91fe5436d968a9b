"""The organisation: agencies, facilities, housing units, kiosks and the persons in custody."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


class Agency(Base):
    __tablename__ = "agencies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Facility(Base):
    __tablename__ = "facilities"
    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # Full VisitingRules as JSON (see vvserver.domain.facilities.rules).
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    # Officers must sign in with a second factor (TOTP); administrators always do unless the
    # server says otherwise (``VV_ADMIN_MFA_REQUIRED``).
    officer_mfa_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class HousingUnit(Base):
    __tablename__ = "housing_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Partial VisitingRules overriding the facility's.
    rules_override: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Kiosk(Base):
    __tablename__ = "kiosks"
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("housing_units.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the device secret; the token itself is shown once at creation/rotation.
    credential_hash: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Person(Base):
    """A person in custody."""

    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("agency_id", "booking_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("housing_units.id"), index=True)
    booking_number: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
    visiting_suspended_until: Mapped[datetime | None]
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
