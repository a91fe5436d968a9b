"""Visiting rules: per facility, overridable per housing unit.

Stored as JSON on the facility (full set) and on the unit (partial override). Every duration and
threshold that the schedule or the media layer uses lives here, so a test facility can run with
2-minute slots and no lead time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import time
from typing import Any


@dataclass(frozen=True, slots=True)
class HourWindow:
    """A weekly window in facility-local wall-clock time. weekday: 0 = Monday."""

    weekday: int
    start: time
    end: time


DEFAULT_WINDOWS: tuple[HourWindow, ...] = tuple(
    HourWindow(d, time(8, 0), time(20, 0)) for d in range(7)
)


@dataclass(frozen=True, slots=True)
class VisitingRules:
    windows: tuple[HourWindow, ...] = DEFAULT_WINDOWS
    slot_minutes: int = 30
    buffer_minutes: int = 0
    lead_min_minutes: int = 24 * 60
    lead_max_days: int = 14
    max_visits_per_person_week: int = 2
    max_visits_per_visitor_week: int = 3
    join_window_minutes: int = 15
    no_show_minutes: int = 10
    warning_seconds: tuple[int, ...] = (300, 60)
    lost_credit_seconds: int = 120
    reminder_minutes: int = 60
    cancel_lead_minutes: int = 24 * 60
    retention_days: int = 90
    kiosk_pin_required: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["windows"] = [
            {
                "weekday": w.weekday,
                "start": w.start.isoformat("minutes"),
                "end": w.end.isoformat("minutes"),
            }
            for w in self.windows
        ]
        data["warning_seconds"] = list(self.warning_seconds)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> VisitingRules:
        return cls().merged(data or {})

    def merged(self, override: dict[str, Any] | None) -> VisitingRules:
        """Return these rules with the keys present in ``override`` replaced."""
        if not override:
            return self
        known = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in override.items():
            if key not in known or value is None:
                continue
            if key == "windows":
                changes[key] = tuple(
                    HourWindow(
                        int(w["weekday"]),
                        time.fromisoformat(w["start"]),
                        time.fromisoformat(w["end"]),
                    )
                    for w in value
                )
            elif key == "warning_seconds":
                changes[key] = tuple(int(v) for v in value)
            else:
                changes[key] = value
        return dataclasses.replace(self, **changes)


def effective(
    facility_rules: dict[str, Any] | None, unit_override: dict[str, Any] | None
) -> VisitingRules:
    """The rules that apply in a housing unit: the facility's, with the unit's override on top.

    The one place that combines the two (booking, the scheduler, the kiosk PIN and the API).
    """
    return VisitingRules.from_json(facility_rules).merged(unit_override)
