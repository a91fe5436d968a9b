"""Request/response models for availability, visits and the kiosk schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_facilities import PersonName
from vvserver.domain.visits.kiosk_day import KioskVisit

MAX_RANGE_DAYS = 31
# Dates outside this span are refused up front (no overflow at the ends of the calendar).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL

VisitState = Literal[
    "ringing",
    "scheduled",
    "ready",
    "live",
    "completed",
    "cancelled",
    "no_show",
    "terminated",
    "failed",
    "declined",
]


def _sane_instant(value: datetime) -> datetime:
    if not EARLIEST_DATE <= value.date() <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return value.astimezone(UTC)


SlotStart = Annotated[AwareDatetime, AfterValidator(_sane_instant)]


class AvailabilityQueryIn(ApiModel):
    """Facility-local dates, both included, at most 31 days."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from", ge=EARLIEST_DATE, le=LATEST_DATE)
    to: date = Field(ge=EARLIEST_DATE, le=LATEST_DATE)

    @model_validator(mode="after")
    def _check_range(self) -> AvailabilityQueryIn:
        if self.from_ > self.to:
            raise ValueError("'from' must not be after 'to'")
        if self.to - self.from_ >= timedelta(days=MAX_RANGE_DAYS):
            raise ValueError(f"at most {MAX_RANGE_DAYS} days at a time")
        return self


class SlotOut(BaseModel):
    start: datetime = Field(description="Facility-local start with its UTC offset")
    end: datetime
    start_utc: datetime
    end_utc: datetime
    free_kiosks: int


class AvailabilityOut(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    person_id: int
    facility_id: int
    timezone: str
    from_: date = Field(serialization_alias="from")
    to: date
    slot_minutes: int
    notice: str | None = Field(
        default=None,
        description="Why there are no slots at all: person_unavailable, person_suspended or "
        "visitor_banned",
    )
    slots: list[SlotOut]


class MinorIn(ApiModel):
    name: PersonName
    date_of_birth: date = Field(ge=date(1900, 1, 1), le=LATEST_DATE)


class BookVisitIn(ApiModel):
    person_id: int = Field(ge=1, le=MAX_ID)
    start: SlotStart = Field(description="A slot start from the availability list (with offset)")
    minors: list[MinorIn] = Field(default_factory=list, max_length=5)


class RescheduleIn(ApiModel):
    start: SlotStart
    reason: str | None = Field(
        default=None, min_length=1, max_length=500, description="Required for staff"
    )


class RebookIn(ApiModel):
    start: SlotStart = Field(description="A slot start from the availability list (with offset)")


class CancelIn(ApiModel):
    reason: str | None = Field(default=None, max_length=500, description="Required for staff")


class VisitListQuery(ApiModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    person_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    on: date | None = Field(
        default=None, alias="date", ge=EARLIEST_DATE, le=LATEST_DATE, description="Facility-local"
    )
    state: VisitState | None = None
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class MinorOut(BaseModel):
    name: str
    date_of_birth: date


class VisitOut(BaseModel):
    id: int
    state: str
    person_id: int
    person_name: str
    visitor_id: int
    visitor_name: str
    facility_id: int
    facility_name: str
    timezone: str
    unit_id: int
    unit_name: str
    kiosk_id: int
    kiosk_name: str
    start: datetime = Field(description="Facility-local start with its UTC offset")
    end: datetime
    start_utc: datetime
    end_utc: datetime
    privileged: bool
    recorded: bool
    monitoring_notice: str
    minors: list[MinorOut]
    makeup_for_visit_id: int | None
    end_reason: str | None
    credit_flag: bool = Field(
        description="Credited by the facility (failed, or too much time lost): free rebooking"
    )
    lost_seconds: int = Field(description="Seconds the call was not two-way (both sides' losses)")
    visitor_lost_seconds: int = Field(
        description="Seconds the visitor's side lost: its media stopped reaching the server "
        "for more than 2 s, or it dropped, until its media returned (or the end)"
    )
    kiosk_lost_seconds: int = Field(description="The same for the facility's (kiosk's) side")
    connected_seconds: int = Field(description="Seconds both sides were connected, at most")
    rebooked_as: int | None = Field(description="The make-up visit booked for this credit")
    on_demand: Literal["visitor", "kiosk"] | None = Field(
        default=None, description="Visit now: who started it; null for a booked visit"
    )
    ring_until: datetime | None = Field(
        default=None, description="While ringing: when an unanswered ring ends as declined"
    )


class BookedVisitOut(VisitOut):
    join_url: str | None = Field(
        description="Shown only here, and only to the visitor: only a hash of the link is stored"
    )


class VisitNowOut(BaseModel):
    """Whether the visitor can start a visit with the person now (Visit now)."""

    person_id: int
    available: bool
    code: str | None = Field(
        description="Why not: on_demand_off, on_demand_privileged, outside_on_demand_hours, "
        "person_unavailable, visitor_banned, blackout, person_weekly_limit, "
        "visitor_weekly_limit, on_demand_too_soon, person_busy, visitor_busy, kiosk_offline, "
        "kiosk_busy"
    )
    message: str | None
    minutes: int = Field(description="The length of an on-demand visit in the person's unit")
    ring_seconds: int = Field(description="How long the kiosk rings before it counts as declined")


class KioskScheduleOut(BaseModel):
    kiosk_id: int
    kiosk_name: str
    date: date
    timezone: str
    visits: list[KioskVisit]
