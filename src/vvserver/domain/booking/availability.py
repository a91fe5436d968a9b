"""The slot engine: which visit slots exist, and which of them a person can still book.

Pure functions over plain values: no database, no clock, no I/O. The caller loads the facts
(kiosks, active visits, blackouts, weekly counts) and passes them in an ``AvailabilityQuery``.

Time model
----------
Visiting windows are weekly, in facility-local wall-clock time (see ``rules.HourWindow``). A slot
start is computed as a local wall-clock time (window start, then every ``slot + buffer`` minutes),
converted to UTC, and every slot lasts exactly ``slot_minutes`` of real time. Across DST:

* spring forward: wall times that do not exist (the skipped hour) produce no slot;
* fall back: a wall time that occurs twice only produces a slot at its first occurrence
  (``fold=0``), so the grid never holds a duplicate;
* a slot must end, in real time, no later than the window's end (a window whose end is
  ``<=`` its start, typically ``00:00``, ends at midnight after that day);
* a slot never starts inside the previous slot of its window plus the buffer (this can only
  matter when a spring-forward jump pulls wall-clock steps closer together in real time).

All intervals are half-open ``[start, end)``; everything returned is an aware UTC datetime.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from vvserver.domain.facilities.rules import VisitingRules

__all__ = [
    "AvailabilityQuery",
    "FreeSlot",
    "Interval",
    "first_free_kiosk",
    "free_slots",
    "grid_slot_at",
    "slot_grid",
    "week_start",
]

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of time ``[start, end)`` between two aware datetimes (UTC by convention)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        """True when the two spans share any instant (touching ends do not overlap)."""
        return self.start < other.end and other.start < self.end


# --------------------------------------------------------------------------- the slot grid


def _wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The first (``fold=0``) UTC instant showing ``wall`` on local clocks; None if none does."""
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None  # inside a spring-forward gap
    return instant


def _window_end_utc(wall_end: datetime, tz: ZoneInfo) -> datetime:
    """The real instant a window ends, taking the earlier reading of an ambiguous/missing time."""
    first = wall_end.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall_end.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return min(first, second)


def _steady(start: datetime, end: datetime, wall_span: timedelta) -> bool:
    """True when local clocks run with real time from ``start`` to ``end`` (no DST change).

    The real span equals the wall-clock span exactly when the UTC offset is the same at both ends
    (two clock changes that cancel out within one window do not occur in practice).
    """
    return end - start == wall_span


def _day_grid(rules: VisitingRules, tz: ZoneInfo, day: date) -> tuple[Interval, ...]:
    """All slots of one local date, in UTC, sorted by start, without duplicates (memoized)."""
    try:
        return _cached_day_grid(rules, tz, day)
    except TypeError:  # rules built by hand with a list somewhere: not hashable, not cacheable
        return _compute_day_grid(rules, tz, day)


def _compute_day_grid(rules: VisitingRules, tz: ZoneInfo, day: date) -> tuple[Interval, ...]:
    weekday = day.weekday()
    slot = timedelta(minutes=rules.slot_minutes)
    buffer = timedelta(minutes=rules.buffer_minutes)
    step = slot + buffer
    if slot <= _ZERO:
        return ()
    found: dict[datetime, Interval] = {}
    for window in rules.windows:
        if window.weekday != weekday:
            continue
        wall = datetime.combine(day, window.start)
        if window.end > window.start:
            wall_end = datetime.combine(day, window.end)
        else:
            wall_end = datetime.combine(day + _ONE_DAY, time(0))
        end_utc = _window_end_utc(wall_end, tz)
        first = _wall_to_utc(wall, tz)
        if first is not None and _steady(first, end_utc, wall_end - wall):
            # No clock change inside the window: step in real time, no per-slot conversion.
            start = first
            while start + slot <= end_utc:
                found.setdefault(start, Interval(start, start + slot))
                start += step
            continue
        not_before: datetime | None = None
        while wall < wall_end:
            start_or_none = _wall_to_utc(wall, tz)
            wall += step
            if start_or_none is None:
                continue
            stop = start_or_none + slot
            if stop > end_utc:
                break  # fold=0 instants grow with wall time: no later start can fit either
            if not_before is not None and start_or_none < not_before:
                continue
            found.setdefault(start_or_none, Interval(start_or_none, stop))
            not_before = stop + buffer
    return tuple(found[key] for key in sorted(found))


_cached_day_grid = lru_cache(maxsize=4096)(_compute_day_grid)


def _days(first_day: date, last_day: date) -> Iterator[date]:
    day = first_day
    while day <= last_day:
        yield day
        day += _ONE_DAY


def slot_grid(
    rules: VisitingRules, tz: ZoneInfo, first_day: date, last_day: date
) -> list[Interval]:
    """Every slot the weekly windows produce for local dates ``first_day..last_day`` inclusive.

    The result is in UTC and sorted by start. Slots of one local date all start on that date.
    """
    grid: list[Interval] = []
    for day in _days(first_day, last_day):
        grid.extend(_day_grid(rules, tz, day))
    return grid


def grid_slot_at(rules: VisitingRules, tz: ZoneInfo, start: datetime) -> Interval | None:
    """The grid slot starting exactly at ``start`` (aware, any zone), or None if off the grid."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("grid_slot_at needs an aware datetime")
    local_day = start.astimezone(tz).date()
    for slot in _day_grid(rules, tz, local_day):
        if slot.start == start:
            return slot
    return None


def week_start(moment: datetime, tz: ZoneInfo) -> date:
    """The Monday (local date) of the facility-local week containing ``moment``."""
    local_day = moment.astimezone(tz).date()
    return local_day - timedelta(days=local_day.weekday())


# --------------------------------------------------------------------------- availability


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    """Everything ``free_slots`` needs to know, loaded by the caller."""

    now: datetime
    rules: VisitingRules
    tz: ZoneInfo
    first_day: date
    last_day: date
    kiosk_ids: Sequence[int]  # enabled kiosks of the person's housing unit
    kiosk_busy: Mapping[int, Sequence[Interval]]  # active visits per kiosk
    person_busy: Sequence[Interval]  # the person's other active visits
    blackouts: Sequence[Interval]
    person_week_counts: Mapping[date, int]  # counted visits per week_start for the person
    visitor_busy: Sequence[Interval] = ()  # the requesting visitor's own active visits
    visitor_week_counts: Mapping[date, int] | None = None  # None: no visitor cap check
    suspended_until: datetime | None = None  # the person may not visit before this instant


@dataclass(frozen=True, slots=True)
class FreeSlot:
    """A bookable slot: ``kiosk_id`` is the lowest free kiosk, the one a booking takes."""

    start: datetime
    end: datetime
    kiosk_id: int
    free_kiosks: int


class _Grid:
    """A sorted slot list with fast "which slots does this interval touch" lookups."""

    __slots__ = ("by_start", "ends", "slots", "spaced", "starts")

    def __init__(self, slots: list[Interval], pad: timedelta) -> None:
        self.slots = slots
        self.starts = [s.start for s in slots]
        self.ends = [s.end for s in slots]  # sorted too: every slot has the same length
        self.by_start = {s.start: i for i, s in enumerate(slots)}
        # When consecutive slots are at least `pad` apart, a busy interval that is exactly a grid
        # slot, widened by `pad`, touches that slot alone: no bisect needed.
        self.spaced = all(self.starts[i + 1] >= self.ends[i] + pad for i in range(len(slots) - 1))

    def touched(self, start: datetime, end: datetime, pad: timedelta) -> range:
        """Indices of the slots overlapping ``[start - pad, end + pad)``.

        ``pad`` must not exceed the one the grid was built with (the fast path relies on it).
        """
        if self.spaced:
            i = self.by_start.get(start)
            if i is not None and self.ends[i] == end:
                return range(i, i + 1)
        lo = bisect_right(self.ends, start - pad)  # first slot ending after the busy start
        hi = bisect_left(self.starts, end + pad)  # slots starting before the busy end
        return range(lo, hi)


def _bookable_days(q: AvailabilityQuery) -> Iterator[date]:
    """Local dates in range whose week is under the person's (and visitor's) weekly cap."""
    rules = q.rules
    for day in _days(q.first_day, q.last_day):
        week = day - timedelta(days=day.weekday())
        if q.person_week_counts.get(week, 0) >= rules.max_visits_per_person_week:
            continue
        visitor_counts = q.visitor_week_counts
        if (
            visitor_counts is not None
            and visitor_counts.get(week, 0) >= rules.max_visits_per_visitor_week
        ):
            continue
        yield day


def free_slots(q: AvailabilityQuery) -> list[FreeSlot]:
    """The grid slots of ``q.first_day..q.last_day`` that the person can book now, sorted.

    A slot is free when it starts within ``[now + lead_min, now + lead_max]`` and not before
    ``suspended_until``; overlaps no blackout; overlaps none of the person's or the visitor's
    active visits, each widened by the buffer on both sides; has a kiosk whose visits, widened by
    the buffer, leave it alone; and its local week is under the weekly caps.
    """
    rules = q.rules
    kiosks = sorted(set(q.kiosk_ids))
    if not kiosks:
        return []
    slots: list[Interval] = []
    for day in _bookable_days(q):
        slots.extend(_day_grid(rules, q.tz, day))

    earliest = q.now + timedelta(minutes=rules.lead_min_minutes)
    if q.suspended_until is not None and q.suspended_until > earliest:
        earliest = q.suspended_until
    latest = q.now + timedelta(days=rules.lead_max_days)
    starts = [s.start for s in slots]
    slots = slots[bisect_left(starts, earliest) : bisect_right(starts, latest)]
    if not slots:
        return []

    pad = timedelta(minutes=rules.buffer_minutes)
    grid = _Grid(slots, pad)
    blocked = [False] * len(slots)
    for intervals, widen in (
        (q.blackouts, _ZERO),
        (q.person_busy, pad),
        (q.visitor_busy, pad),
    ):
        for iv in intervals:
            for i in grid.touched(iv.start, iv.end, widen):
                blocked[i] = True

    # One bit per kiosk (bit k = kiosks[k]) set in every slot that kiosk cannot take.
    # The hot loop (thousands of visits): the on-grid case is one dict lookup, inlined.
    taken = [0] * len(slots)
    on_grid = grid.by_start if grid.spaced else {}
    starts, ends = grid.starts, grid.ends
    for bit, kiosk_id in enumerate(kiosks):
        flag = 1 << bit
        for iv in q.kiosk_busy.get(kiosk_id, ()):
            hit = on_grid.get(iv.start)
            if hit is not None and ends[hit] == iv.end:
                taken[hit] |= flag
                continue
            for i in range(bisect_right(ends, iv.start - pad), bisect_left(starts, iv.end + pad)):
                taken[i] |= flag

    all_taken = (1 << len(kiosks)) - 1
    result: list[FreeSlot] = []
    for i, slot in enumerate(slots):
        mask = taken[i]
        if blocked[i] or mask == all_taken:
            continue
        lowest_free = (~mask & (mask + 1)).bit_length() - 1
        result.append(
            FreeSlot(
                start=slot.start,
                end=slot.end,
                kiosk_id=kiosks[lowest_free],
                free_kiosks=len(kiosks) - mask.bit_count(),
            )
        )
    return result


def first_free_kiosk(
    slot: Interval,
    kiosk_ids: Iterable[int],
    kiosk_busy: Mapping[int, Sequence[Interval]],
    buffer_minutes: int,
) -> int | None:
    """The lowest kiosk id whose visits, widened by the buffer, leave ``slot`` free; else None."""
    pad = timedelta(minutes=buffer_minutes)
    lo = slot.start - pad
    hi = slot.end + pad
    for kiosk_id in sorted(set(kiosk_ids)):
        if not any(iv.start < hi and lo < iv.end for iv in kiosk_busy.get(kiosk_id, ())):
            return kiosk_id
    return None
