"""When a standing weekly visit's occurrences are: pure date and time-zone arithmetic.

A series is "every ``weekday`` at ``at``" in the facility's own zone: the wall-clock time stays
(2 PM stays 2 PM across a DST change) and the UTC instant moves with the offset. A wall time a
spring-forward gap skips has no instant; ``occurrence_start`` then answers None and that week is
skipped (the slot grid has no slot there either).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vvserver.domain.errors import InvalidInput

WEEK = timedelta(days=7)


def parse_local_time(text: str) -> time:
    """``"HH:MM"`` (24-hour) as a time; anything else is 422 ``invalid_time``."""
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 5 or parsed.second or parsed.microsecond:
        raise InvalidInput("give the time as HH:MM (24-hour clock)", code="invalid_time")
    return parsed


def occurrence_start(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """The UTC instant local clocks show ``at`` on ``day`` (the first, when it shows twice)."""
    wall = datetime.combine(day, at)
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return instant


def index_start(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``occurrence_start``, or for a skipped wall time the instant just after the gap: the
    value the scheduler's index holds (it must never be null)."""
    found = occurrence_start(day, at, tz)
    if found is not None:
        return found
    return datetime.combine(day, at).replace(tzinfo=tz, fold=1).astimezone(UTC)


def first_occurrence_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def first_bookable_date(
    now: datetime, weekday: int, at: time, tz: ZoneInfo, lead_min_minutes: int, not_before: date
) -> date:
    """The first ``weekday`` on or after ``not_before`` whose occurrence starts no earlier than
    the booking lead time allows (``now + lead_min_minutes``)."""
    earliest = now + timedelta(minutes=lead_min_minutes)
    day = first_occurrence_on_or_after(max(not_before, now.astimezone(tz).date()), weekday)
    while index_start(day, at, tz) < earliest:
        day += WEEK
    return day
