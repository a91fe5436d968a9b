"""Request/response models for standing weekly visits (series)."""

from __future__ import annotations

from datetime import date as LocalDate
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_visits import MAX_ID, MinorIn, MinorOut

SeriesState = Literal["active", "paused", "cancelled", "ended"]


class SeriesIn(ApiModel):
    person_id: int = Field(ge=1, le=MAX_ID)
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    time: str = Field(
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Facility-local start, HH:MM (24-hour); must be a visit slot that weekday",
    )
    minors: list[MinorIn] = Field(default_factory=list, max_length=5)


class SeriesListQuery(ApiModel):
    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    person_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    include_closed: bool = Field(default=False, description="Also cancelled and ended series")


class SlotSpanOut(BaseModel):
    start_utc: datetime
    end_utc: datetime


class OccurrenceOut(BaseModel):
    date: LocalDate = Field(description="Facility-local date of the occurrence")
    start_utc: datetime
    outcome: Literal["booked", "skipped"]
    visit_id: int | None = Field(description="The visit booked (booked only)")
    visit_state: str | None = Field(description="That visit's state now (e.g. cancelled)")
    reason_code: str | None = Field(
        description="Why it was skipped: the booking refusal's code (slot_taken, blackout, "
        "person_weekly_limit, visitor_weekly_limit, person_busy, visitor_busy, "
        "person_unavailable, visitor_banned, outside_booking_window, not_a_slot, ...)"
    )
    reason: str | None
    alternatives: list[SlotSpanOut] = Field(
        description="Nearest free slots offered instead (skipped only)"
    )


class SeriesOut(BaseModel):
    model_config = ConfigDict(from_attributes=False)

    id: int
    state: SeriesState
    person_id: int
    person_name: str
    visitor_id: int
    visitor_name: str
    facility_id: int
    facility_name: str
    timezone: str
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    time: str = Field(description="Facility-local HH:MM")
    minors: list[MinorOut]
    next_date: LocalDate = Field(description="Facility-local date of the next occurrence to book")
    next_start_utc: datetime
    books_at: datetime | None = Field(
        description="When the next occurrence will be booked (its booking window opens); "
        "null unless active"
    )
    end_reason: str | None
    created_at: datetime
    occurrences: list[OccurrenceOut] = Field(description="The latest 8, newest first")
