"""The slot engine: the grid of visit slots, and which of them a person can book.

Every test speaks in facility-local time (America/New_York) and checks what comes back in UTC.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vvserver.domain.booking.availability import (
    AvailabilityQuery,
    FreeSlot,
    Interval,
    first_free_kiosk,
    free_slots,
    grid_slot_at,
    slot_grid,
    week_start,
)
from vvserver.domain.facilities.rules import HourWindow, VisitingRules

NY = ZoneInfo("America/New_York")
MONDAY = date(2027, 1, 4)  # a plain winter Monday, UTC-05:00
SPRING_FORWARD = date(2027, 3, 14)  # 02:00 EST -> 03:00 EDT
FALL_BACK = date(2027, 11, 7)  # 02:00 EDT -> 01:00 EST


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A facility-local wall-clock time (first occurrence when ambiguous)."""
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


def local_times(slots: Sequence[Interval] | Sequence[FreeSlot]) -> list[str]:
    return [s.start.astimezone(NY).strftime("%H:%M%z") for s in slots]


def every_day(start: time, end: time) -> tuple[HourWindow, ...]:
    return tuple(HourWindow(d, start, end) for d in range(7))


def rules(**changes: Any) -> VisitingRules:
    """Hourly slots 09:00-12:00 every day, no lead time, generous caps, unless told otherwise."""
    base = VisitingRules(
        windows=every_day(time(9), time(12)),
        slot_minutes=60,
        buffer_minutes=0,
        lead_min_minutes=0,
        lead_max_days=14,
        max_visits_per_person_week=10,
        max_visits_per_visitor_week=10,
    )
    return replace(base, **changes)


def query(
    r: VisitingRules,
    *,
    now: datetime | None = None,
    first_day: date = MONDAY,
    last_day: date = MONDAY,
    kiosk_ids: Sequence[int] = (1,),
    kiosk_busy: Mapping[int, Sequence[Interval]] | None = None,
    person_busy: Sequence[Interval] = (),
    blackouts: Sequence[Interval] = (),
    person_week_counts: Mapping[date, int] | None = None,
    visitor_busy: Sequence[Interval] = (),
    visitor_week_counts: Mapping[date, int] | None = None,
    suspended_until: datetime | None = None,
) -> AvailabilityQuery:
    return AvailabilityQuery(
        now=now if now is not None else at(first_day - timedelta(days=1), 0),
        rules=r,
        tz=NY,
        first_day=first_day,
        last_day=last_day,
        kiosk_ids=kiosk_ids,
        kiosk_busy=kiosk_busy or {},
        person_busy=person_busy,
        blackouts=blackouts,
        person_week_counts=person_week_counts or {},
        visitor_busy=visitor_busy,
        visitor_week_counts=visitor_week_counts,
        suspended_until=suspended_until,
    )


def visit(day: date, hour: int, minute: int = 0, minutes: int = 60) -> Interval:
    start = at(day, hour, minute).astimezone(UTC)
    return Interval(start, start + timedelta(minutes=minutes))


# --------------------------------------------------------------------------- the grid


def test_a_normal_day_starts_every_slot_plus_buffer_minutes() -> None:
    r = rules(windows=(HourWindow(0, time(9), time(11)),), slot_minutes=30, buffer_minutes=15)

    grid = slot_grid(r, NY, MONDAY, MONDAY)

    assert local_times(grid) == ["09:00-0500", "09:45-0500", "10:30-0500"]
    assert all(s.end - s.start == timedelta(minutes=30) for s in grid)


def test_days_without_a_window_have_no_slots() -> None:
    r = rules(windows=(HourWindow(0, time(9), time(11)),))

    assert slot_grid(r, NY, MONDAY + timedelta(days=1), MONDAY + timedelta(days=6)) == []


def test_slots_never_cross_the_window_end() -> None:
    fits = rules(
        windows=(HourWindow(0, time(9), time(10, 50)),), slot_minutes=30, buffer_minutes=10
    )
    short = rules(
        windows=(HourWindow(0, time(9), time(10, 45)),), slot_minutes=30, buffer_minutes=10
    )

    assert local_times(slot_grid(fits, NY, MONDAY, MONDAY)) == [
        "09:00-0500",
        "09:40-0500",
        "10:20-0500",
    ]
    assert local_times(slot_grid(short, NY, MONDAY, MONDAY)) == ["09:00-0500", "09:40-0500"]


def test_a_window_ending_at_midnight_runs_to_the_end_of_the_day() -> None:
    r = rules(windows=(HourWindow(0, time(22), time(0)),))

    grid = slot_grid(r, NY, MONDAY, MONDAY)

    assert local_times(grid) == ["22:00-0500", "23:00-0500"]
    assert grid[-1].end == at(MONDAY + timedelta(days=1), 0)


def test_results_are_utc_and_carry_the_season_offset() -> None:
    r = rules(windows=every_day(time(9), time(10)))
    summer = date(2027, 7, 5)

    winter_slot, summer_slot = slot_grid(r, NY, MONDAY, MONDAY) + slot_grid(r, NY, summer, summer)

    assert winter_slot.start.tzinfo is UTC
    assert winter_slot.start == datetime(2027, 1, 4, 14, 0, tzinfo=UTC)
    assert winter_slot.start.astimezone(NY).isoformat() == "2027-01-04T09:00:00-05:00"
    assert summer_slot.start == datetime(2027, 7, 5, 13, 0, tzinfo=UTC)
    assert summer_slot.start.astimezone(NY).isoformat() == "2027-07-05T09:00:00-04:00"


def test_spring_forward_loses_the_missing_hour() -> None:
    assert SPRING_FORWARD.weekday() == 6
    r = rules(windows=(HourWindow(6, time(1), time(4)),), slot_minutes=60)

    grid = slot_grid(r, NY, SPRING_FORWARD, SPRING_FORWARD)

    # 02:00 never shows on the clocks that night: the window holds two real hours.
    assert local_times(grid) == ["01:00-0500", "03:00-0400"]
    assert [s.start for s in grid] == [
        datetime(2027, 3, 14, 6, 0, tzinfo=UTC),
        datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
    ]
    assert all(s.end - s.start == timedelta(minutes=60) for s in grid)

    half_hours = slot_grid(replace(r, slot_minutes=30), NY, SPRING_FORWARD, SPRING_FORWARD)
    assert local_times(half_hours) == ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400"]


def test_spring_forward_never_makes_slots_overlap() -> None:
    # 90-minute steps: 00:00, 01:30, (03:00 EDT is only 30 real minutes after 01:30 EST), 04:30.
    r = rules(windows=(HourWindow(6, time(0), time(6)),), slot_minutes=90)

    grid = slot_grid(r, NY, SPRING_FORWARD, SPRING_FORWARD)

    assert local_times(grid) == ["00:00-0500", "01:30-0500", "04:30-0400"]
    assert not any(a.overlaps(b) for a, b in pairwise(grid))


def test_fall_back_keeps_slots_exact_and_never_repeats_the_doubled_hour() -> None:
    assert FALL_BACK.weekday() == 6
    r = rules(windows=(HourWindow(6, time(0), time(4)),), slot_minutes=60)

    grid = slot_grid(r, NY, FALL_BACK, FALL_BACK)

    # 01:00 happens twice; only its first occurrence (EDT) is a slot.
    assert local_times(grid) == ["00:00-0400", "01:00-0400", "02:00-0500", "03:00-0500"]
    assert all(s.end - s.start == timedelta(minutes=60) for s in grid)
    assert len({s.start for s in grid}) == len(grid)
    assert not any(a.overlaps(b) for a, b in pairwise(grid))

    half_hours = slot_grid(replace(r, slot_minutes=30), NY, FALL_BACK, FALL_BACK)
    assert len(half_hours) == 8
    assert [t for t in local_times(half_hours) if t.startswith("01:")] == [
        "01:00-0400",
        "01:30-0400",
    ]


def test_grid_slot_at_finds_on_grid_starts_only() -> None:
    r = rules(windows=(HourWindow(0, time(9), time(11)),), slot_minutes=30, buffer_minutes=15)

    on_grid = grid_slot_at(r, NY, at(MONDAY, 9, 45))
    same_instant_in_utc = grid_slot_at(r, NY, datetime(2027, 1, 4, 14, 45, tzinfo=UTC))

    assert on_grid == Interval(at(MONDAY, 9, 45), at(MONDAY, 10, 15))
    assert same_instant_in_utc == on_grid
    assert grid_slot_at(r, NY, at(MONDAY, 9, 30)) is None  # inside the buffer
    assert grid_slot_at(r, NY, at(MONDAY, 10, 30)) is not None
    assert grid_slot_at(r, NY, at(MONDAY + timedelta(days=1), 9)) is None  # no window Tuesday
    with pytest.raises(ValueError):
        grid_slot_at(r, NY, datetime(2027, 1, 4, 9, 45))


def test_week_start_is_the_local_monday() -> None:
    sunday_night = at(date(2027, 1, 10), 23, 30)  # already Monday 04:30 in UTC

    assert week_start(sunday_night, NY) == date(2027, 1, 4)
    assert week_start(sunday_night.astimezone(UTC), NY) == date(2027, 1, 4)
    assert week_start(at(date(2027, 1, 11), 0, 0), NY) == date(2027, 1, 11)


def test_intervals_are_half_open() -> None:
    nine = visit(MONDAY, 9)

    assert nine.overlaps(visit(MONDAY, 9, 30))
    assert not nine.overlaps(visit(MONDAY, 10))
    assert not visit(MONDAY, 10).overlaps(nine)


# --------------------------------------------------------------------------- free slots


def test_with_nothing_booked_every_slot_is_free_on_the_lowest_kiosk() -> None:
    slots = free_slots(query(rules(), kiosk_ids=(3, 1, 2)))

    assert local_times(slots) == ["09:00-0500", "10:00-0500", "11:00-0500"]
    assert {(s.kiosk_id, s.free_kiosks) for s in slots} == {(1, 3)}
    assert slots[0].end == slots[0].start + timedelta(hours=1)


def test_lead_time_bounds_are_inclusive() -> None:
    r = rules(lead_min_minutes=120, lead_max_days=1)

    # Booking at 08:00: nothing before 10:00 today, nothing after 08:00 tomorrow.
    early = free_slots(query(r, now=at(MONDAY, 8), last_day=MONDAY + timedelta(days=1)))
    assert [s.start for s in early] == [at(MONDAY, 10), at(MONDAY, 11)]

    # Booking at 07:00: 09:00 is exactly two hours away, so it is still bookable.
    edge = free_slots(query(r, now=at(MONDAY, 7), last_day=MONDAY + timedelta(days=1)))
    assert [s.start for s in edge] == [at(MONDAY, 9), at(MONDAY, 10), at(MONDAY, 11)]

    # Booking at 09:00 with one hour of lead: tomorrow 09:00 is exactly one day away.
    tomorrow_nine = free_slots(
        query(replace(r, lead_min_minutes=60), now=at(MONDAY, 9), last_day=MONDAY + timedelta(1))
    )
    assert [s.start for s in tomorrow_nine] == [
        at(MONDAY, 10),
        at(MONDAY, 11),
        at(MONDAY + timedelta(days=1), 9),
    ]


def test_a_blackout_removes_the_slots_it_touches() -> None:
    blackout = Interval(at(MONDAY, 10, 30), at(MONDAY, 11, 15))

    slots = free_slots(query(rules(), blackouts=[blackout]))

    assert local_times(slots) == ["09:00-0500"]


def test_a_blackout_ending_at_a_slot_start_leaves_it_alone() -> None:
    blackout = Interval(at(MONDAY, 8), at(MONDAY, 9))

    assert len(free_slots(query(rules(), blackouts=[blackout]))) == 3


def test_a_slot_survives_while_one_kiosk_is_free() -> None:
    busy = {1: [visit(MONDAY, 9), visit(MONDAY, 10)], 2: [visit(MONDAY, 10)]}

    slots = free_slots(query(rules(), kiosk_ids=(1, 2), kiosk_busy=busy))

    assert [(s.start, s.kiosk_id, s.free_kiosks) for s in slots] == [
        (at(MONDAY, 9), 2, 1),  # kiosk 1 is taken, the booking goes to kiosk 2
        (at(MONDAY, 11), 1, 2),  # 10:00 is gone: both kiosks are taken
    ]


def test_visits_on_kiosks_of_other_units_do_not_count() -> None:
    busy = {99: [visit(MONDAY, 9)]}

    assert len(free_slots(query(rules(), kiosk_ids=(1,), kiosk_busy=busy))) == 3


def test_no_enabled_kiosk_means_no_slot() -> None:
    assert free_slots(query(rules(), kiosk_ids=())) == []


def test_the_buffer_keeps_kiosk_visits_apart() -> None:
    # Grid: 09:00, 09:40, 10:20 (30-minute visits, 10-minute buffer).
    r = rules(windows=every_day(time(9), time(11)), slot_minutes=30, buffer_minutes=10)
    odd_visit = Interval(at(MONDAY, 10, 10), at(MONDAY, 10, 15))  # booked under older rules
    assert not any(odd_visit.overlaps(s) for s in slot_grid(r, NY, MONDAY, MONDAY))

    slots = free_slots(query(r, kiosk_busy={1: [odd_visit]}))

    # Widened to 10:00-10:25, the visit blocks both neighbours.
    assert local_times(slots) == ["09:00-0500"]


def test_the_buffer_also_applies_between_close_windows() -> None:
    # Two windows only five minutes apart: 09:00-09:30 and 09:35-10:05, with a 10-minute buffer.
    r = rules(
        windows=(HourWindow(0, time(9), time(9, 30)), HourWindow(0, time(9, 35), time(10, 5))),
        slot_minutes=30,
        buffer_minutes=10,
    )
    nine = Interval(at(MONDAY, 9), at(MONDAY, 9, 30))

    assert local_times(free_slots(query(r))) == ["09:00-0500", "09:35-0500"]
    assert free_slots(query(r, kiosk_busy={1: [nine]})) == []


def test_the_persons_other_visit_blocks_overlapping_slots() -> None:
    other = visit(MONDAY, 10, 30, minutes=30)  # 10:30-11:00, another visitor

    slots = free_slots(query(rules(), kiosk_ids=(1, 2), person_busy=[other]))

    assert local_times(slots) == ["09:00-0500", "11:00-0500"]


def test_the_persons_other_visit_is_widened_by_the_buffer() -> None:
    r = rules(windows=every_day(time(9), time(11)), slot_minutes=30, buffer_minutes=10)
    other = Interval(at(MONDAY, 10, 10), at(MONDAY, 10, 15))

    assert local_times(free_slots(query(r, person_busy=[other]))) == ["09:00-0500"]


def test_the_visitors_own_visit_elsewhere_blocks_overlapping_slots() -> None:
    elsewhere = visit(MONDAY, 9, 30, minutes=15)

    slots = free_slots(query(rules(), visitor_busy=[elsewhere]))

    assert local_times(slots) == ["10:00-0500", "11:00-0500"]


def test_the_weekly_person_cap_counts_per_local_week() -> None:
    sunday, monday = date(2027, 1, 10), date(2027, 1, 11)
    r = rules(
        windows=(HourWindow(6, time(22), time(0)), HourWindow(0, time(9), time(10))),
        max_visits_per_person_week=2,
    )
    q = query(r, first_day=sunday, last_day=monday)

    before = free_slots(q)
    # Sunday 22:00/23:00 local are already Monday in UTC, yet they belong to the week of the 4th.
    assert [s.start.date() for s in before] == [monday, monday, monday]

    full = free_slots(replace(q, person_week_counts={date(2027, 1, 4): 2}))
    assert [s.start for s in full] == [at(monday, 9)]

    one_left = free_slots(replace(q, person_week_counts={date(2027, 1, 4): 1}))
    assert one_left == before


def test_the_weekly_visitor_cap_applies_only_when_given() -> None:
    sunday, monday = date(2027, 1, 10), date(2027, 1, 11)
    r = rules(
        windows=(HourWindow(6, time(22), time(0)), HourWindow(0, time(9), time(10))),
        max_visits_per_visitor_week=3,
    )
    q = query(r, first_day=sunday, last_day=monday)

    capped = free_slots(replace(q, visitor_week_counts={monday: 3}))
    assert [s.start for s in capped] == [at(sunday, 22), at(sunday, 23)]

    assert len(free_slots(replace(q, visitor_week_counts={monday: 2}))) == 3
    assert len(free_slots(replace(q, visitor_week_counts=None))) == 3


def test_no_slot_before_a_suspension_ends() -> None:
    later = free_slots(query(rules(), suspended_until=at(MONDAY, 10, 30)))
    exactly = free_slots(query(rules(), suspended_until=at(MONDAY, 10)))

    assert local_times(later) == ["11:00-0500"]
    assert local_times(exactly) == ["10:00-0500", "11:00-0500"]


def test_free_slots_work_across_a_dst_change() -> None:
    r = rules(windows=every_day(time(1), time(4)))
    saturday = SPRING_FORWARD - timedelta(days=1)

    slots = free_slots(query(r, first_day=saturday, last_day=SPRING_FORWARD))

    assert local_times(slots) == [
        "01:00-0500",
        "02:00-0500",
        "03:00-0500",
        "01:00-0500",
        "03:00-0400",
    ]


def test_first_free_kiosk_picks_the_lowest_free_id() -> None:
    slot = visit(MONDAY, 10)
    busy = {3: [visit(MONDAY, 10)], 5: [visit(MONDAY, 9)]}

    assert first_free_kiosk(slot, [7, 3, 5], busy, 0) == 5
    # With a 10-minute buffer the 09:00-10:00 visit on kiosk 5 is too close.
    assert first_free_kiosk(slot, [7, 3, 5], busy, 10) == 7
    assert first_free_kiosk(slot, [3], busy, 0) is None
    assert first_free_kiosk(slot, [], busy, 0) is None


# --------------------------------------------------------------------------- cross-check


def _reference(q: AvailabilityQuery) -> list[FreeSlot]:
    """free_slots written the slow, obvious way."""
    r = q.rules
    pad = timedelta(minutes=r.buffer_minutes)

    def widened(iv: Interval) -> Interval:
        return Interval(iv.start - pad, iv.end + pad)

    out: list[FreeSlot] = []
    for slot in slot_grid(r, q.tz, q.first_day, q.last_day):
        week = week_start(slot.start, q.tz)
        if slot.start < q.now + timedelta(minutes=r.lead_min_minutes):
            continue
        if slot.start > q.now + timedelta(days=r.lead_max_days):
            continue
        if q.suspended_until is not None and slot.start < q.suspended_until:
            continue
        if any(slot.overlaps(b) for b in q.blackouts):
            continue
        if any(slot.overlaps(widened(b)) for b in [*q.person_busy, *q.visitor_busy]):
            continue
        if q.person_week_counts.get(week, 0) >= r.max_visits_per_person_week:
            continue
        if (
            q.visitor_week_counts is not None
            and q.visitor_week_counts.get(week, 0) >= r.max_visits_per_visitor_week
        ):
            continue
        free = [
            k
            for k in sorted(set(q.kiosk_ids))
            if not any(slot.overlaps(widened(b)) for b in q.kiosk_busy.get(k, ()))
        ]
        if free:
            out.append(FreeSlot(slot.start, slot.end, free[0], len(free)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_free_slots_agree_with_the_obvious_implementation(seed: int) -> None:
    rnd = random.Random(seed)
    r = rules(
        windows=(*every_day(time(1), time(5)), *every_day(time(9), time(12))),
        slot_minutes=rnd.choice([20, 30, 45]),
        buffer_minutes=rnd.choice([0, 5, 15]),
        lead_min_minutes=rnd.choice([0, 600]),
        max_visits_per_person_week=2,
        max_visits_per_visitor_week=3,
    )
    first_day = SPRING_FORWARD - timedelta(days=3)
    last_day = SPRING_FORWARD + timedelta(days=5)
    grid = slot_grid(r, NY, first_day, last_day)
    kiosks = [1, 2, 3, 4]

    def some_visit() -> Interval:
        if rnd.random() < 0.7:  # most visits sit on the grid, some were booked under old rules
            return rnd.choice(grid)
        start = rnd.choice(grid).start + timedelta(minutes=rnd.randint(-40, 40))
        return Interval(start, start + timedelta(minutes=rnd.choice([10, 30, 60])))

    first_week, last_week = week_start(at(first_day, 12), NY), week_start(at(last_day, 12), NY)
    assert first_week != last_week
    full = rnd.choice(["none", "person", "visitor"])  # which weekly cap is reached

    q = AvailabilityQuery(
        now=at(first_day, 0),
        rules=r,
        tz=NY,
        first_day=first_day,
        last_day=last_day,
        kiosk_ids=kiosks,
        kiosk_busy={k: [some_visit() for _ in range(len(grid) // 2)] for k in kiosks},
        person_busy=[some_visit() for _ in range(3)],
        blackouts=[some_visit()],
        person_week_counts={first_week: 2 if full == "person" else 1},
        visitor_busy=[some_visit() for _ in range(2)],
        visitor_week_counts={last_week: 3 if full == "visitor" else 2},
        suspended_until=rnd.choice([None, at(first_day + timedelta(days=1), 10)]),
    )

    expected = _reference(q)

    assert free_slots(q) == expected
    assert 0 < len(expected) < len(grid)
