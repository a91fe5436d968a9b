"""Why a slot cannot be booked, and who may come along: pure checks with stable error codes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from vvserver.domain.accounts.signup import age_on
from vvserver.domain.booking.availability import (
    AvailabilityQuery,
    Interval,
    first_free_kiosk,
    week_start,
)
from vvserver.domain.errors import InvalidInput

logger = logging.getLogger(__name__)

MAX_MINORS = 5


@dataclass(frozen=True, slots=True)
class Minor:
    """A child joining the visitor (declared as an additional person present)."""

    name: str
    date_of_birth: date


def slot_refusal(q: AvailabilityQuery, slot: Interval, status: str) -> tuple[str, str] | None:
    """Why ``slot`` (on the grid) cannot be booked, as (code, message); None when it can.

    Same rules and edges as ``availability.free_slots``: lead window and suspension on the slot
    start, blackouts unwidened, the person's and visitor's visits widened by the buffer.
    """
    rules = q.rules
    if status != "active":
        return "person_unavailable", "this person cannot have visits at the moment"
    if q.suspended_until is not None and slot.start < q.suspended_until:
        return "person_unavailable", "visiting is suspended for this person at that time"
    earliest = q.now + timedelta(minutes=rules.lead_min_minutes)
    latest = q.now + timedelta(days=rules.lead_max_days)
    if not earliest <= slot.start <= latest:
        return (
            "outside_booking_window",
            f"visits can be booked from {rules.lead_min_minutes} minutes to "
            f"{rules.lead_max_days} days ahead",
        )
    if any(b.overlaps(slot) for b in q.blackouts):
        return "blackout", "visits are suspended at that time"
    week = week_start(slot.start, q.tz)
    if q.person_week_counts.get(week, 0) >= rules.max_visits_per_person_week:
        return (
            "person_weekly_limit",
            f"this person already has {rules.max_visits_per_person_week} visits that week",
        )
    if (
        q.visitor_week_counts is not None
        and q.visitor_week_counts.get(week, 0) >= rules.max_visits_per_visitor_week
    ):
        return (
            "visitor_weekly_limit",
            f"you already have {rules.max_visits_per_visitor_week} visits that week",
        )
    pad = timedelta(minutes=rules.buffer_minutes)
    widened = Interval(slot.start - pad, slot.end + pad)
    if any(iv.overlaps(widened) for iv in q.person_busy):
        return "person_busy", "this person has another visit at that time"
    if any(iv.overlaps(widened) for iv in q.visitor_busy):
        return "visitor_busy", "you have another visit at that time"
    if first_free_kiosk(slot, q.kiosk_ids, q.kiosk_busy, rules.buffer_minutes) is None:
        return "slot_taken", "that slot has just been taken; pick another one"
    return None


def check_minors(minors: list[Minor], visit_day: date) -> None:
    if len(minors) > MAX_MINORS:
        raise InvalidInput(f"at most {MAX_MINORS} minors per visit", code="too_many_minors")
    for minor in minors:
        if minor.date_of_birth > visit_day:
            raise InvalidInput(f"{minor.name}: date of birth after the visit", code="invalid_minor")
        if age_on(minor.date_of_birth, visit_day) >= 18:
            raise InvalidInput(
                f"{minor.name} is 18 or older on the visit day; adults need their own account",
                code="minor_not_minor",
            )
