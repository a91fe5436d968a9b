"""Request/response models for visitor profiles, ID checks, bans and approvals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_auth import EmailLanguage
from vvserver.api.schemas_facilities import MAX_ID, Id, Name, PersonName, Reason, UtcDatetime
from vvserver.db.models import Account, Approval, VisitorBan
from vvserver.domain.notices.language import language_of
from vvserver.domain.people.approvals import ApprovalRow

ApprovalStatus = Literal["requested", "approved", "denied", "revoked"]

# ---------------------------------------------------------------------------- profile & ID


class ProfilePatch(ApiModel):
    name: Name | None = None
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,32}$")
    language: EmailLanguage | None = Field(
        default=None, description="the language of the visitor's e-mails (en or es)"
    )


class VisitorProfileOut(BaseModel):
    id: int
    email: str
    name: str
    phone: str | None
    date_of_birth: date | None
    email_verified: bool
    id_status: str
    id_reject_reason: str | None
    id_checked_at: datetime | None
    has_id_photo: bool
    language: EmailLanguage = Field(description="the language the visitor's e-mails are written in")

    @classmethod
    def of(cls, account: Account) -> VisitorProfileOut:
        return cls(
            id=account.id,
            email=account.email,
            name=account.name,
            phone=account.phone,
            date_of_birth=account.date_of_birth,
            email_verified=account.email_verified_at is not None,
            id_status=account.id_status,
            id_reject_reason=account.id_reject_reason,
            id_checked_at=account.id_checked_at,
            has_id_photo=account.id_photo_path is not None,
            language=language_of(account.language),
        )


class IdCheckIn(ApiModel):
    decision: Literal["verified", "rejected"]
    reason: Reason | None = Field(default=None, description="required when rejected; e-mailed")

    @model_validator(mode="after")
    def _reason_for_rejection(self) -> IdCheckIn:
        if self.decision == "rejected" and not self.reason:
            raise ValueError("a rejection needs a reason")
        return self


# ---------------------------------------------------------------------------- bans


class BanIn(ApiModel):
    visitor_id: Id
    reason: Reason = Field(description="told to the visitor")
    ends_at: UtcDatetime


class BanQuery(ApiModel):
    active_only: bool = True


class LiftIn(ApiModel):
    reason: Reason | None = None


class BanOut(BaseModel):
    id: int
    facility_id: int
    visitor_id: int
    visitor_name: str | None = None
    reason: str
    ends_at: datetime
    created_by: int
    created_at: datetime
    lifted_at: datetime | None

    @classmethod
    def of(cls, ban: VisitorBan, visitor: Account | None = None) -> BanOut:
        return cls(
            id=ban.id,
            facility_id=ban.facility_id,
            visitor_id=ban.visitor_id,
            visitor_name=visitor.name if visitor is not None else None,
            reason=ban.reason,
            ends_at=ban.ends_at,
            created_by=ban.created_by,
            created_at=ban.created_at,
            lifted_at=ban.lifted_at,
        )


class BanCreatedOut(BaseModel):
    ban: BanOut
    cancelled_visits: int


# ---------------------------------------------------------------------------- approvals


class ApprovalIn(ApiModel):
    handle: str = Field(
        min_length=20,
        max_length=200,
        description="the person's handle from GET /api/facilities/{facility_id}/directory "
        "(valid 30 minutes, for the visitor who searched)",
    )
    relationship: Annotated[PersonName, Field(max_length=100)]
    professional: Literal["none", "attorney", "clergy"] = "none"
    bar_number: Annotated[PersonName, Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _bar_number_for_attorneys(self) -> ApprovalIn:
        if (self.professional == "attorney") != (self.bar_number is not None):
            raise ValueError("attorneys give a bar number; nobody else does")
        return self


class ApprovalQuery(ApiModel):
    status: ApprovalStatus | None = None
    person_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class DecisionIn(ApiModel):
    decision: Literal["approved", "denied"]
    reason: Reason | None = Field(default=None, description="required when denied; e-mailed")

    @model_validator(mode="after")
    def _reason_for_denial(self) -> DecisionIn:
        if self.decision == "denied" and not self.reason:
            raise ValueError("a denial needs a reason")
        return self


class RevokeIn(ApiModel):
    reason: Reason


class ApprovalPersonOut(BaseModel):
    """For the visitor, ``id`` and ``first_name`` are null until the request is approved."""

    id: int | None
    first_name: str | None
    last_name: str
    booking_number: str


class ApprovalVisitorOut(BaseModel):
    id: int
    name: str
    email_verified: bool
    id_status: str
    has_id_photo: bool
    banned: bool


class ApprovalOut(BaseModel):
    id: int
    status: str
    relationship: str
    professional: str
    bar_number: str | None
    reason: str | None
    facility_id: int
    facility_name: str
    person: ApprovalPersonOut
    visitor: ApprovalVisitorOut
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, row: ApprovalRow, *, for_visitor: bool = False) -> ApprovalOut:
        """``for_visitor``: the person's id and first name only once the visitor was approved."""
        a, p, v = row.approval, row.person, row.visitor
        hidden = for_visitor and not row.person_known_to_visitor
        return cls(
            id=a.id,
            status=a.status,
            relationship=a.relationship,
            professional=a.professional,
            bar_number=a.bar_number,
            reason=a.reason,
            facility_id=row.facility.id,
            facility_name=row.facility.name,
            person=ApprovalPersonOut(
                id=None if hidden else p.id,
                first_name=None if hidden else p.first_name,
                last_name=p.last_name,
                booking_number=p.booking_number,
            ),
            visitor=ApprovalVisitorOut(
                id=v.id,
                name=v.name,
                email_verified=v.email_verified_at is not None,
                id_status=v.id_status,
                has_id_photo=v.id_photo_path is not None,
                banned=row.banned,
            ),
            created_at=a.created_at,
            decided_at=a.decided_at,
        )


class ApprovalBriefOut(BaseModel):
    id: int
    person_id: int
    facility_id: int
    status: str
    relationship: str
    professional: str

    @classmethod
    def of(cls, approval: Approval) -> ApprovalBriefOut:
        return cls(
            id=approval.id,
            person_id=approval.person_id,
            facility_id=approval.facility_id,
            status=approval.status,
            relationship=approval.relationship,
            professional=approval.professional,
        )


class ApprovalRevokedOut(BaseModel):
    approval: ApprovalOut
    cancelled_visits: int


class VisitorOut(VisitorProfileOut):
    """What staff see of a visitor: the profile plus approvals and bans in their scope."""

    active: bool
    approvals: list[ApprovalBriefOut]
    bans: list[BanOut]
