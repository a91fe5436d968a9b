"""Visit-now hours: a visit fits when the facility's on-demand windows cover it, including
windows that meet at midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from vvserver.domain.booking.availability import Interval
from vvserver.domain.facilities.rules import HourWindow
from vvserver.domain.visits.on_demand_hours import in_on_demand_hours

NEW_YORK = ZoneInfo("America/New_York")
ALL_DAY = tuple(HourWindow(d, time(0, 0), time(0, 0)) for d in range(7))


def fits(windows: tuple[HourWindow, ...], local_start: datetime, minutes: int) -> bool:
    rules: Any = SimpleNamespace(on_demand_windows=windows)
    person: Any = SimpleNamespace(tz=NEW_YORK)
    start = local_start.replace(tzinfo=NEW_YORK).astimezone(UTC)
    return in_on_demand_hours(rules, person, Interval(start, start + timedelta(minutes=minutes)))


def test_a_facility_open_all_day_offers_a_visit_across_midnight() -> None:
    # Friday 23:53 in New York, a 20-minute visit: it ends on Saturday.
    assert fits(ALL_DAY, datetime(2026, 12, 4, 23, 53), 20)
    assert fits(ALL_DAY, datetime(2026, 12, 5, 12, 0), 20)


def test_evening_windows_that_meet_count_as_one_and_a_gap_does_not() -> None:
    friday, saturday = 4, 5
    evening = HourWindow(friday, time(18, 0), time(0, 0))  # until midnight
    night = HourWindow(saturday, time(0, 0), time(1, 0))
    assert fits((evening, night), datetime(2026, 12, 4, 23, 50), 20)
    assert not fits((evening,), datetime(2026, 12, 4, 23, 50), 20)  # nothing after midnight
    late_night = HourWindow(saturday, time(0, 5), time(1, 0))
    assert not fits((evening, late_night), datetime(2026, 12, 4, 23, 50), 20)  # a 5-min gap
    assert fits((evening,), datetime(2026, 12, 4, 18, 0), 20)
    assert not fits((evening,), datetime(2026, 12, 4, 17, 59), 20)
    assert not fits((evening,), datetime(2026, 12, 3, 20, 0), 20)  # Thursday: no window
