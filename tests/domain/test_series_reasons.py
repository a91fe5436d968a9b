"""Why a standing weekly visit's week was not booked, in the visitor's language: every refusal
the booking rules can give (``slot_refusal``) is written in Spanish too, numbers included, and
in English exactly as the booking code says it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.factories import OPEN_RULES
from vvserver.domain.booking.availability import AvailabilityQuery, Interval, week_start
from vvserver.domain.booking.series_booking import refusal_reason
from vvserver.domain.booking.slot_checks import slot_refusal
from vvserver.domain.errors import DomainError
from vvserver.domain.notices.mail_text import Phrase, render_reason

NY = ZoneInfo("America/New_York")
NOW = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
# Sunday 17 January 2027, 14:00 in New York.
SLOT = Interval(datetime(2027, 1, 17, 19, 0, tzinfo=UTC), datetime(2027, 1, 17, 19, 30, tzinfo=UTC))
RULES = replace(OPEN_RULES, max_visits_per_person_week=2, max_visits_per_visitor_week=3)
WEEK = week_start(SLOT.start, NY)
BASE = AvailabilityQuery(
    now=NOW,
    rules=RULES,
    tz=NY,
    first_day=date(2027, 1, 17),
    last_day=date(2027, 1, 17),
    kiosk_ids=[1],
    kiosk_busy={},
    person_busy=[],
    blackouts=[],
    person_week_counts={},
    visitor_busy=[],
    visitor_week_counts={},
)


def every_refusal() -> dict[str, tuple[str, str]]:
    """What ``slot_refusal`` says for each way the slot can be refused."""
    cases = {
        "released": (BASE, "released"),
        "suspended": (replace(BASE, suspended_until=SLOT.end), "active"),
        "too far": (replace(BASE, now=NOW - timedelta(days=30)), "active"),
        "blackout": (replace(BASE, blackouts=[SLOT]), "active"),
        "person limit": (replace(BASE, person_week_counts={WEEK: 2}), "active"),
        "visitor limit": (replace(BASE, visitor_week_counts={WEEK: 3}), "active"),
        "person busy": (replace(BASE, person_busy=[SLOT]), "active"),
        "visitor busy": (replace(BASE, visitor_busy=[SLOT]), "active"),
        "taken": (replace(BASE, kiosk_busy={1: [SLOT]}), "active"),
    }
    found = {}
    for case, (query, status) in cases.items():
        refusal = slot_refusal(query, SLOT, status)
        assert refusal is not None, case
        found[case] = refusal
    assert slot_refusal(BASE, SLOT, "active") is None
    return found


def test_every_refusal_is_written_in_both_languages() -> None:
    for case, (code, message) in every_refusal().items():
        why = refusal_reason(DomainError(message, code=code), RULES)
        assert render_reason(why, "en") == message, case
        spanish = render_reason(why, "es")
        assert spanish != message, f"{case}: {message!r} is not translated"


def test_numbers_in_a_refusal_are_kept() -> None:
    refusals = every_refusal()
    code, message = refusals["person limit"]
    why = refusal_reason(DomainError(message, code=code), RULES)
    assert isinstance(why, Phrase)
    assert render_reason(why, "es") == "esta persona ya tiene 2 visitas esa semana"
    code, message = refusals["too far"]
    why = refusal_reason(DomainError(message, code=code), RULES)
    assert render_reason(why, "es") == (
        "las visitas se reservan con entre 0 minutos y 14 días de antelación"
    )
    # Rules that no longer match the message (changed since): the message is kept as it is.
    code, message = refusals["visitor limit"]
    stale = refusal_reason(DomainError(message, code=code), OPEN_RULES)
    assert render_reason(stale, "es") == message == "you already have 3 visits that week"
