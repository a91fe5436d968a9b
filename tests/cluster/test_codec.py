"""Every visit event and room event crosses the cluster as JSON and comes back equal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vvserver.cluster.codec import (
    UnknownEvent,
    dumps,
    room_event_from,
    room_event_json,
    visit_event_from,
    visit_event_json,
)
from vvserver.domain.visits.bus import (
    ChatPostedEvent,
    LiveListChangedEvent,
    RingEvent,
    StaffAlertEvent,
    VisitEndedEvent,
    VisitEvent,
    VisitStartEvent,
)
from vvserver.media.room_events import (
    MonitorDropped,
    ParticipantStateChanged,
    QualityReport,
    RoomEvent,
    VisitEnded,
    VisitWarning,
)

AT = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
VISIT_EVENTS: list[VisitEvent] = [
    VisitStartEvent(1, 2, 3, 4, AT, AT + timedelta(minutes=30)),
    VisitEndedEvent(1, "cancelled", None),
    LiveListChangedEvent(1),
    ChatPostedEvent(1),
    StaffAlertEvent("pin_locked", 1, 4, 2, "wrong kiosk PIN entered too often", AT),
    RingEvent(1, 4, 9, 2, "visitor", "ringing"),
]
ROOM_EVENTS: list[RoomEvent] = [
    VisitWarning(1, 60),
    VisitEnded(1, "time_up", "the visit's time is over"),
    ParticipantStateChanged(1, "kiosk", "connected"),
    QualityReport(1, "visitor", 29.9, 512_000.0, 3, None),
    QualityReport(1, "kiosk", 30.0, 498_000.0, 0, 0.012),
    MonitorDropped(1, "officer:7"),
]


@pytest.mark.parametrize("event", VISIT_EVENTS, ids=lambda e: e.kind)
def test_a_visit_event_comes_back_equal(event: VisitEvent) -> None:
    assert visit_event_from(json.loads(dumps(visit_event_json(event)))) == event


@pytest.mark.parametrize("event", ROOM_EVENTS, ids=lambda e: type(e).__name__)
def test_a_room_event_comes_back_equal(event: RoomEvent) -> None:
    assert room_event_from(json.loads(dumps(room_event_json(event)))) == event


def test_an_event_of_an_unknown_kind_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownEvent):
        visit_event_from({"kind": "visit_teleported", "visit_id": 1})
    with pytest.raises(UnknownEvent):
        room_event_from({"type": "Teleported", "visit_id": 1})
