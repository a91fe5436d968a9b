"""Accounts and signing in: logins, multi-factor codes, sessions, failed sign-ins and
e-mail link tokens."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vvserver.db.models.base import Base


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
