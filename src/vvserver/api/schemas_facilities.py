"""Request/response models for facilities, rules, units, kiosks, blackouts, persons and staff."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

from vvserver.api.endpoints import ApiModel
from vvserver.db.models import Blackout, Facility, HousingUnit, Kiosk
from vvserver.domain.facilities.rules import HourWindow, VisitingRules, effective

MAX_ID = 2**31 - 1


def _single_line(value: str) -> str:
    """Refuse control characters (NUL breaks PostgreSQL text) and lone surrogates."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _multi_line(value: str) -> str:
    """Like ``_single_line`` but line breaks and tabs are fine."""
    _single_line(value.translate(_LINE_BREAKS))
    return value


_LINE_BREAKS = str.maketrans("\n\r\t", "   ")
# Invisible characters that make a name read differently from what it is: format characters
# (bidi overrides U+202A-202E and isolates U+2066-2069, zero-width U+200B-200D, U+2060, U+FEFF,
# soft hyphen) and line/paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp"})


def _is_noncharacter(ch: str) -> bool:
    code = ord(ch)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _name_text(value: str) -> str:
    """A name shown to staff and visitors: one line, no invisible or non-characters."""
    _single_line(value)
    for ch in value:
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES or _is_noncharacter(ch):
            raise ValueError(
                f"invisible or reserved character U+{ord(ch):04X} is not allowed in a name"
            )
    return value


def _utc(moment: datetime) -> datetime:
    if not 2000 <= moment.year <= 2200:
        raise ValueError("year must be between 2000 and 2200")
    return moment.astimezone(UTC)


# Aware timestamps only (naive ones are a 422), normalised to UTC, in a sane range.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Person, visitor, staff and facility (unit, kiosk) names.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_name_text)]
PersonName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name_text)]
Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_multi_line)]
SearchText = Annotated[str, Field(max_length=100), AfterValidator(_single_line)]
Timezone = Annotated[str, Field(min_length=1, max_length=64)]
Pin = Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
BookingNumber = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w./-]*$")]

# ---------------------------------------------------------------------------- visiting rules

SlotMinutes = Annotated[int, Field(ge=5, le=240)]
BufferMinutes = Annotated[int, Field(ge=0, le=120)]
LeadMinMinutes = Annotated[int, Field(ge=0, le=60 * 24 * 89)]
LeadMaxDays = Annotated[int, Field(ge=1, le=90)]
WeeklyLimit = Annotated[int, Field(ge=0, le=100)]
JoinWindowMinutes = Annotated[int, Field(ge=0, le=120)]
NoShowMinutes = Annotated[int, Field(ge=1, le=120)]
WarningSeconds = Annotated[list[Annotated[int, Field(ge=5, le=3600)]], Field(max_length=5)]
LostCreditSeconds = Annotated[int, Field(ge=0, le=3600)]
ReminderMinutes = Annotated[int, Field(ge=0, le=7 * 24 * 60)]
CancelLeadMinutes = Annotated[int, Field(ge=0, le=14 * 24 * 60)]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
OnDemandMinutes = Annotated[int, Field(ge=5, le=120)]
OnDemandGapMinutes = Annotated[int, Field(ge=0, le=7 * 24 * 60)]


class WindowIn(ApiModel):
    """A weekly visiting window in facility-local time; weekday 0 = Monday. An ``end`` of
    ``00:00`` means midnight at the end of the day."""

    weekday: int = Field(ge=0, le=6)
    start: time
    end: time

    @model_validator(mode="after")
    def _check(self) -> WindowIn:
        for moment in (self.start, self.end):
            if moment.tzinfo is not None or moment.second or moment.microsecond:
                raise ValueError("times are local HH:MM without seconds or offset")
        if not (self.start < self.end or self.end == time(0, 0)):
            raise ValueError("a window must end after it starts (or at 00:00)")
        return self

    def to_window(self) -> HourWindow:
        return HourWindow(self.weekday, self.start, self.end)


Windows = Annotated[list[WindowIn], Field(max_length=70)]
_DEFAULTS = VisitingRules()


class RulesIn(ApiModel):
    """The full set of visiting rules; an omitted field takes the built-in default."""

    windows: Windows
    slot_minutes: SlotMinutes = _DEFAULTS.slot_minutes
    buffer_minutes: BufferMinutes = _DEFAULTS.buffer_minutes
    lead_min_minutes: LeadMinMinutes = _DEFAULTS.lead_min_minutes
    lead_max_days: LeadMaxDays = _DEFAULTS.lead_max_days
    max_visits_per_person_week: WeeklyLimit = _DEFAULTS.max_visits_per_person_week
    max_visits_per_visitor_week: WeeklyLimit = _DEFAULTS.max_visits_per_visitor_week
    join_window_minutes: JoinWindowMinutes = _DEFAULTS.join_window_minutes
    no_show_minutes: NoShowMinutes = _DEFAULTS.no_show_minutes
    warning_seconds: WarningSeconds = Field(default_factory=lambda: list(_DEFAULTS.warning_seconds))
    lost_credit_seconds: LostCreditSeconds = _DEFAULTS.lost_credit_seconds
    reminder_minutes: ReminderMinutes = _DEFAULTS.reminder_minutes
    cancel_lead_minutes: CancelLeadMinutes = _DEFAULTS.cancel_lead_minutes
    retention_days: RetentionDays = _DEFAULTS.retention_days
    kiosk_pin_required: bool = _DEFAULTS.kiosk_pin_required
    on_demand_enabled: bool = _DEFAULTS.on_demand_enabled
    # Omitted: every day 08:00-20:00 (the built-in default).
    on_demand_windows: Windows | None = None
    on_demand_minutes: OnDemandMinutes = _DEFAULTS.on_demand_minutes
    on_demand_counts_toward_limit: bool = _DEFAULTS.on_demand_counts_toward_limit
    on_demand_gap_minutes: OnDemandGapMinutes = _DEFAULTS.on_demand_gap_minutes
    on_demand_privileged: bool = _DEFAULTS.on_demand_privileged

    def to_rules(self) -> VisitingRules:
        data: dict[str, Any] = self.model_dump(exclude={"windows", "on_demand_windows"})
        data["warning_seconds"] = tuple(self.warning_seconds)
        if self.on_demand_windows is not None:
            data["on_demand_windows"] = tuple(w.to_window() for w in self.on_demand_windows)
        return VisitingRules(windows=tuple(w.to_window() for w in self.windows), **data)


class UnitRulesIn(ApiModel):
    """A partial override of the facility's rules: a field set to null clears that override,
    an omitted field keeps the current override."""

    windows: Windows | None = None
    slot_minutes: SlotMinutes | None = None
    buffer_minutes: BufferMinutes | None = None
    lead_min_minutes: LeadMinMinutes | None = None
    lead_max_days: LeadMaxDays | None = None
    max_visits_per_person_week: WeeklyLimit | None = None
    max_visits_per_visitor_week: WeeklyLimit | None = None
    join_window_minutes: JoinWindowMinutes | None = None
    no_show_minutes: NoShowMinutes | None = None
    warning_seconds: WarningSeconds | None = None
    lost_credit_seconds: LostCreditSeconds | None = None
    reminder_minutes: ReminderMinutes | None = None
    cancel_lead_minutes: CancelLeadMinutes | None = None
    retention_days: RetentionDays | None = None
    kiosk_pin_required: bool | None = None
    on_demand_enabled: bool | None = None
    on_demand_windows: Windows | None = None
    on_demand_minutes: OnDemandMinutes | None = None
    on_demand_counts_toward_limit: bool | None = None
    on_demand_gap_minutes: OnDemandGapMinutes | None = None
    on_demand_privileged: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, as rules JSON (``None`` = clear)."""
        dumped = self.model_dump(mode="json", include=self.model_fields_set)
        for key in ("windows", "on_demand_windows"):
            windows: list[WindowIn] | None = getattr(self, key)
            if windows is not None:
                dumped[key] = [
                    {"weekday": w.weekday, "start": f"{w.start:%H:%M}", "end": f"{w.end:%H:%M}"}
                    for w in windows
                ]
        return dumped


class WindowOut(BaseModel):
    weekday: int
    start: str
    end: str


class RulesOut(BaseModel):
    windows: list[WindowOut]
    slot_minutes: int
    buffer_minutes: int
    lead_min_minutes: int
    lead_max_days: int
    max_visits_per_person_week: int
    max_visits_per_visitor_week: int
    join_window_minutes: int
    no_show_minutes: int
    warning_seconds: list[int]
    lost_credit_seconds: int
    reminder_minutes: int
    cancel_lead_minutes: int
    retention_days: int
    kiosk_pin_required: bool
    on_demand_enabled: bool
    on_demand_windows: list[WindowOut]
    on_demand_minutes: int
    on_demand_counts_toward_limit: bool
    on_demand_gap_minutes: int
    on_demand_privileged: bool

    @classmethod
    def of(cls, rules: VisitingRules) -> RulesOut:
        return cls.model_validate(rules.to_json())


# ---------------------------------------------------------------------------- facilities


class FacilityIn(ApiModel):
    name: Name
    timezone: Timezone
    rules: RulesIn | None = None


class FacilityPatch(ApiModel):
    name: Name | None = None
    timezone: Timezone | None = None
    officer_mfa_required: bool | None = Field(
        default=None, description="officers must sign in with a second factor (TOTP)"
    )


class FacilityQuery(ApiModel):
    q: SearchText | None = None


class FacilityOut(BaseModel):
    id: int
    agency_id: int
    name: str
    timezone: str
    rules: RulesOut
    officer_mfa_required: bool = Field(
        description="officers must sign in with a second factor (administrators always do)"
    )

    @classmethod
    def of(cls, facility: Facility) -> FacilityOut:
        return cls(
            officer_mfa_required=facility.officer_mfa_required,
            id=facility.id,
            agency_id=facility.agency_id,
            name=facility.name,
            timezone=facility.timezone,
            rules=RulesOut.of(VisitingRules.from_json(facility.rules)),
        )


class UnitIn(ApiModel):
    name: Name


class UnitOut(BaseModel):
    id: int
    facility_id: int
    name: str
    rules_override: dict[str, Any] | None
    effective_rules: RulesOut

    @classmethod
    def of(cls, unit: HousingUnit, facility: Facility) -> UnitOut:
        return cls(
            id=unit.id,
            facility_id=unit.facility_id,
            name=unit.name,
            rules_override=unit.rules_override,
            effective_rules=RulesOut.of(effective(facility.rules, unit.rules_override)),
        )


# ---------------------------------------------------------------------------- kiosks


class KioskIn(ApiModel):
    unit_id: Id
    name: Name


class KioskPatch(ApiModel):
    name: Name | None = None
    enabled: bool | None = None


class KioskOut(BaseModel):
    id: int
    facility_id: int
    unit_id: int
    name: str
    enabled: bool
    last_seen_at: datetime | None
    created_at: datetime
    online: bool = Field(default=False, description="Its kiosk socket is open on this server now")

    @classmethod
    def of(cls, kiosk: Kiosk, *, online: bool = False) -> KioskOut:
        return cls(
            online=online,
            id=kiosk.id,
            facility_id=kiosk.facility_id,
            unit_id=kiosk.unit_id,
            name=kiosk.name,
            enabled=kiosk.enabled,
            last_seen_at=kiosk.last_seen_at,
            created_at=kiosk.created_at,
        )


class KioskCredentialOut(BaseModel):
    """The device token is shown only in this response; store it on the kiosk."""

    kiosk: KioskOut
    token: str


# ---------------------------------------------------------------------------- blackouts


class BlackoutIn(ApiModel):
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    reason: Reason = Field(description="shown to visitors whose visits are cancelled")
    unit_id: Id | None = None


class BlackoutQuery(ApiModel):
    include_past: bool = False


class BlackoutOut(BaseModel):
    id: int
    facility_id: int
    unit_id: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: int
    created_at: datetime

    @classmethod
    def of(cls, blackout: Blackout) -> BlackoutOut:
        return cls(
            id=blackout.id,
            facility_id=blackout.facility_id,
            unit_id=blackout.unit_id,
            starts_at=blackout.starts_at,
            ends_at=blackout.ends_at,
            reason=blackout.reason,
            created_by=blackout.created_by,
            created_at=blackout.created_at,
        )


class BlackoutCreatedOut(BaseModel):
    blackout: BlackoutOut
    cancelled_visits: int
