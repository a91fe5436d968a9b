"""Request/response models for recordings (search, playback manifest) and the audit view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from vvserver.api.endpoints import ApiModel

MAX_ID = 2**31 - 1
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)


class DateRangeQuery(ApiModel):
    date_from: date | None = Field(
        default=None, ge=EARLIEST_DATE, le=LATEST_DATE, description="Facility-local, inclusive"
    )
    date_to: date | None = Field(
        default=None, ge=EARLIEST_DATE, le=LATEST_DATE, description="Facility-local, inclusive"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


class RecordingSearchQuery(DateRangeQuery):
    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    person_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    visitor_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    kiosk_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    legal_hold: bool | None = Field(
        default=None, description="true: only recordings on legal hold; false: only the others"
    )
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class PersonRefOut(BaseModel):
    id: int
    name: str
    booking_number: str


class NamedOut(BaseModel):
    id: int
    name: str


class RecordingItemOut(BaseModel):
    visit_id: int
    recording_id: int
    facility_id: int
    person: PersonRefOut
    visitor: NamedOut
    kiosk: NamedOut
    starts_at: datetime = Field(description="The visit's slot start")
    ends_at: datetime = Field(description="The visit's slot end")
    duration_s: float = Field(description="From the first file's start to the last one's end")
    size_bytes: int
    flags: int = Field(description="How many moments of the visit staff flagged")
    legal_hold: bool = Field(description="On legal hold: the retention purge skips it")
    purge_after: datetime | None = Field(
        description="When the retention purge deletes it (not while on legal hold)"
    )


class RecordingListOut(BaseModel):
    items: list[RecordingItemOut]
    total: int


class TrackOut(BaseModel):
    participant: Literal["visitor", "kiosk"]
    segment: int = Field(description="Connection segment (a new one after each reconnect)")
    url: str
    offset_s: float = Field(description="Seconds from the recording's start (started_at)")
    duration_s: float
    size_bytes: int
    sha256: str
    mime: Literal["video/webm"] = "video/webm"
    recording_id: int
    name: str


class PlaybackFlagOut(BaseModel):
    id: int
    offset_s: float = Field(description="Seconds from the recording's start (started_at)")
    visit_offset_s: float = Field(description="Seconds from the visit's slot start")
    note: str
    at: datetime


class HoldIn(ApiModel):
    reason: str = Field(min_length=3, max_length=500, description="Why (kept in the audit log)")


class HoldOut(BaseModel):
    id: int
    visit_id: int
    active: bool = Field(description="In force (not lifted)")
    reason: str
    placed_by: str = Field(description="The administrator's name")
    placed_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None


class PlaybackOut(BaseModel):
    visit_id: int
    recording_id: int
    started_at: datetime = Field(description="Wall clock of the recording's time 0")
    tracks: list[TrackOut]
    flags: list[PlaybackFlagOut]
    legal_hold: bool = Field(description="The visit's recording is on legal hold now")
    holds: list[HoldOut] = Field(description="Every hold placed on it, newest first")


class AuditQuery(DateRangeQuery):
    facility_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    action: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=r"^[a-z_]+(\.[a-z_]+)*\.?$",
        description="Exact action, or a prefix ending with '.' (e.g. 'recording.')",
    )
    actor_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    before_id: int | None = Field(default=None, ge=1, le=2**62)
    limit: int = Field(default=50, ge=1, le=200)


class AuditItemOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_id: int | None
    actor_email: str | None
    action: str
    outcome: str
    target: str | None
    facility_id: int | None
    component: str
    request_id: str | None
    detail: dict[str, object]


class AuditListOut(BaseModel):
    items: list[AuditItemOut]
    next_before_id: int | None


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    problems: list[str]
    first_broken_id: int | None
