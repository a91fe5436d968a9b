"""Visit-now hours: whether an on-demand visit fits the facility's weekly on-demand windows
(facility-local wall-clock time; windows that meet count as one)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from vvserver.domain.booking.availability import Interval
from vvserver.domain.booking.availability_store import PersonContext
from vvserver.domain.facilities.rules import VisitingRules


def in_on_demand_hours(rules: VisitingRules, person: PersonContext, span: Interval) -> bool:
    """Whether ``span`` lies inside the on-demand windows (facility-local, weekly). Windows
    that meet count as one: a visit from 23:55 to 00:15 fits a facility open all day, every
    day (each day's window ends at midnight where the next one opens)."""
    at = span.start
    for _ in range(len(rules.on_demand_windows) + 1):
        closes = _open_until(rules, person.tz, at)
        if closes is None:
            return False
        if span.end <= closes:
            return True
        at = closes
    return False


def _open_until(rules: VisitingRules, tz: tzinfo, at: datetime) -> datetime | None:
    """When the on-demand window open at ``at`` closes (the latest, if several are), or None
    when none is open then."""
    local = at.astimezone(tz)
    latest: datetime | None = None
    for window in rules.on_demand_windows:
        for day in (local.date(), local.date() - timedelta(days=1)):
            if window.weekday != day.weekday():
                continue
            opens = datetime.combine(day, window.start, tzinfo=tz)
            closes_day = day if window.end > window.start else day + timedelta(days=1)
            closes = datetime.combine(closes_day, window.end, tzinfo=tz)
            if opens <= at < closes and (latest is None or closes > latest):
                latest = closes
    return latest
