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


_WINDOW_KEYS = ("windows", "on_demand_windows")


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
    # Visit now (on-demand): visits that start at once when a kiosk and both people are free
    # (see ``domain.visits.on_demand``). Off unless the facility or unit turns it on.
    on_demand_enabled: bool = False
    # When a visit may start on demand (weekly, facility-local, like ``windows``): the whole
    # reserved span (ring time and visit) must lie inside one window.
    on_demand_windows: tuple[HourWindow, ...] = DEFAULT_WINDOWS
    on_demand_minutes: int = 15
    on_demand_counts_toward_limit: bool = True
    # Least time between the end of a person's on-demand visit and the start of the next one.
    on_demand_gap_minutes: int = 60
    # Attorney/clergy approvals may start on-demand visits (never recorded, as always).
    on_demand_privileged: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in _WINDOW_KEYS:
            data[key] = [
                {
                    "weekday": w.weekday,
                    "start": w.start.isoformat("minutes"),
                    "end": w.end.isoformat("minutes"),
                }
                for w in getattr(self, key)
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
            if key in _WINDOW_KEYS:
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
