"""Request/response models for staff multi-factor sign-in (TOTP and recovery codes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_auth import SessionOut

TotpCode = Field(
    min_length=6, max_length=6, pattern=r"^[0-9]{6}$", description="the 6-digit code of the app"
)


class MfaPendingOut(BaseModel):
    """Password accepted; a second factor (stage verify) or enrolment (stage enrol) is due."""

    mfa_required: Literal[True] = True
    stage: Literal["verify", "enrol"] = Field(
        description="verify: send a code to POST /api/auth/mfa; enrol: set up an authenticator "
        "app with POST /api/auth/mfa/enrolment and .../confirm first"
    )
    email: str
    csrf_token: str = Field(
        description="send it as X-CSRF-Token to the POST /api/auth/mfa endpoints; the pending "
        "login itself travels in the vv_mfa cookie (HttpOnly, path /api/auth/mfa)"
    )
    expires_at: datetime = Field(description="sign in with the password again after this")


class MfaCodeIn(ApiModel):
    code: str = Field(
        min_length=6,
        max_length=32,
        description="the 6-digit code of the authenticator app, or one recovery code "
        "(XXXXX-XXXXX; case, spaces and hyphens do not matter)",
    )


class MfaTotpIn(ApiModel):
    code: str = TotpCode


class MfaSignedInOut(SessionOut):
    """The signed-in session (as from POST /api/auth/login), and how the second factor was given."""

    mfa_method: Literal["totp", "recovery_code"]
    recovery_codes_left: int | None = Field(
        default=None, description="after a recovery code: how many unused ones remain"
    )


class MfaEnrolmentOut(BaseModel):
    """A new TOTP secret, shown only now: scan the QR code (or type the secret) into an app."""

    secret: str = Field(description="base32, for typing into an authenticator app by hand")
    otpauth_uri: str = Field(description="otpauth://totp/... (what the QR code holds)")
    qr_svg: str = Field(description="the QR code of otpauth_uri as a data:image/svg+xml URI")
    digits: int = 6
    period_s: int = 30


class MfaEnrolledOut(BaseModel):
    """Enrolment confirmed: the recovery codes are shown this once (only hashes are kept)."""

    recovery_codes: list[str]
    session: SessionOut | None = Field(
        default=None, description="set when enrolment completed a pending sign-in"
    )


class MfaPasswordIn(ApiModel):
    password: str = Field(min_length=1, max_length=256, description="the current password")


class MfaRegenerateIn(ApiModel):
    password: str = Field(min_length=1, max_length=256, description="the current password")
    code: str = TotpCode


class MfaStatusOut(BaseModel):
    enrolled: bool
    required: bool = Field(description="the facility or server requires MFA for this account")
    enrolled_at: datetime | None
    recovery_codes_left: int


class RecoveryCodesOut(BaseModel):
    """New recovery codes, shown this once; the old ones no longer work."""

    recovery_codes: list[str]
