"""Request/response models for people in custody and staff accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_facilities import (
    MAX_ID,
    BookingNumber,
    Id,
    Name,
    PersonName,
    Pin,
    Reason,
    SearchText,
    UtcDatetime,
)
from vvserver.db.models import Account, Person

# ---------------------------------------------------------------------------- persons


class PersonIn(ApiModel):
    booking_number: BookingNumber
    first_name: PersonName
    last_name: PersonName
    unit_id: Id
    pin: Pin | None = None


class PersonPatch(ApiModel):
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    unit_id: Id | None = None


class PersonQuery(ApiModel):
    q: SearchText | None = None
    booking_number: SearchText | None = None
    status: Literal["active", "released", "transferred"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class ReleaseIn(ApiModel):
    reason: Reason | None = None


class TransferIn(ApiModel):
    """With ``facility_id`` (same agency) and ``unit_id``: a move; without: out of custody."""

    facility_id: Id | None = None
    unit_id: Id | None = None
    reason: Reason


class SuspendIn(ApiModel):
    until: UtcDatetime
    reason: Reason = Field(description="kept in the audit log; visitors see a generic notice")


class PinIn(ApiModel):
    pin: Pin


class PersonOut(BaseModel):
    id: int
    agency_id: int
    facility_id: int
    unit_id: int
    booking_number: str
    first_name: str
    last_name: str
    status: str
    visiting_suspended_until: datetime | None
    has_pin: bool
    created_at: datetime

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(
            id=person.id,
            agency_id=person.agency_id,
            facility_id=person.facility_id,
            unit_id=person.unit_id,
            booking_number=person.booking_number,
            first_name=person.first_name,
            last_name=person.last_name,
            status=person.status,
            visiting_suspended_until=person.visiting_suspended_until,
            has_pin=person.pin_hash is not None,
            created_at=person.created_at,
        )


class PersonChangeOut(BaseModel):
    person: PersonOut
    cancelled_visits: int


class DirectoryQuery(ApiModel):
    last_name: PersonName
    booking_number: Annotated[SearchText, Field(min_length=1, max_length=64)]


class DirectoryFormatOut(BaseModel):
    """The shape of a facility's booking numbers, for a hint next to the search."""

    example: str | None = Field(description="an invented number in that shape, e.g. DC-12345")
    prefix: str | None = Field(description="the letters in front (may be left out when searching)")
    digits: int | None = Field(description="how many digits follow the prefix")


class DirectoryEntryOut(BaseModel):
    """What a visitor learns about a person they found: nothing beyond what they typed."""

    handle: str = Field(
        description="opaque; name the person by it in POST /api/approvals (valid 30 minutes, "
        "for this visitor only)"
    )
    facility_id: int
    last_name: str
    booking_number: str


# ---------------------------------------------------------------------------- staff


class StaffIn(ApiModel):
    email: EmailStr = Field(max_length=254)
    name: Name
    role: Literal["officer", "facility_admin", "agency_admin"]
    facility_id: Id | None = None
    password: str = Field(min_length=1, max_length=256)


class StaffQuery(ApiModel):
    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    include_inactive: bool = False


class StaffOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    agency_id: int | None
    facility_id: int | None
    active: bool
    created_at: datetime
    mfa_enrolled: bool = Field(description="has a confirmed second factor (TOTP)")

    @classmethod
    def of(cls, account: Account) -> StaffOut:
        return cls(
            mfa_enrolled=account.mfa_enrolled_at is not None,
            id=account.id,
            email=account.email,
            name=account.name,
            role=account.role,
            agency_id=account.agency_id,
            facility_id=account.facility_id,
            active=account.active,
            created_at=account.created_at,
        )
