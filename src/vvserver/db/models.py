"""Database tables. Plain typed ORM classes; no HTTP or pydantic here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vvserver.db.types import UTCDateTime

# ``ringing``: an on-demand visit waiting to be answered (see domain.visits.on_demand).
ACTIVE_VISIT_STATES = ("ringing", "scheduled", "ready", "live")
_ACTIVE_SQL = "state IN ('ringing', 'scheduled', 'ready', 'live')"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


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


class Account(Base):
    """A login: visitor, officer, facility_admin or agency_admin."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # The language of the account's e-mails ("en" or "es"; domain.notices.language).
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # Visitor profile (null for staff).
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    id_status: Mapped[str] = mapped_column(String(16), default="none")
    id_photo_path: Mapped[str | None] = mapped_column(String(300))
    id_photo_type: Mapped[str | None] = mapped_column(String(32))
    id_reject_reason: Mapped[str | None] = mapped_column(Text)
    id_checked_at: Mapped[datetime | None]
    id_checked_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # Staff multi-factor sign-in (TOTP). The secret is AES-GCM encrypted with a key derived from
    # the server secret; it is set at enrolment start and confirmed by the first code.
    mfa_secret: Mapped[str | None] = mapped_column(String(200))
    mfa_enrolled_at: Mapped[datetime | None]
    # The last accepted TOTP time step: a code of that step or an older one is refused (replay).
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)


class MfaRecoveryCode(Base):
    """Single-use recovery codes of a staff account, argon2id-hashed."""

    __tablename__ = "mfa_recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MfaPendingLogin(Base):
    """A password check that still waits for its second factor (or for enrolment).

    Not a session: it opens only the ``/api/auth/mfa`` endpoints, once, for a few minutes.
    """

    __tablename__ = "mfa_pending_logins"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))  # "verify" or "enrol"
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Session(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class LoginFailures(Base):
    """Failed sign-ins for an e-mail address that has no active account (SHA-256 of it only).

    They count and lock exactly like ``Account.failed_logins``/``locked_until``, so the answers
    to sign-in attempts do not tell whether an account exists.
    """

    __tablename__ = "login_failures"
    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_failed_at: Mapped[datetime] = mapped_column(index=True)


class EmailToken(Base):
    """Single-use e-mail link tokens (verify, reset, unlock), stored as SHA-256 only."""

    __tablename__ = "email_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


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


class Notification(Base):
    """Outgoing e-mail, queued in the same transaction as the change it reports."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_email: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    ics: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


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
