"""The call ledger: connected and lost seconds per side, from connections and from media."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vvserver.db.models import Visit
from vvserver.domain.visits.call_downtime import count_downtime
from vvserver.media.media_flow import SILENCE_AFTER, MediaFlowWatch
from vvserver.visits_live.ledger import CallLedger

T0 = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_ledger_counts_connected_and_lost_time_from_the_first_connection() -> None:
    ledger = CallLedger()
    ledger.disconnected("kiosk", at(0))  # never connected: nothing lost
    ledger.connected("visitor", at(10))
    ledger.connected("kiosk", at(20))
    assert ledger.both_connected
    first = ledger.checkpoint(at(30))
    assert (first["visitor"].connected_s, first["kiosk"].connected_s) == (20.0, 10.0)
    ledger.disconnected("kiosk", at(40))
    ledger.connected("kiosk", at(40))  # a reconnect that drops again at once
    ledger.disconnected("kiosk", at(40))
    assert not ledger.both_connected
    ledger.connected("kiosk", at(70))
    assert ledger.losing("kiosk")  # connected again, but no media yet
    ledger.media("kiosk", True, at(70.5))
    ledger.disconnected("visitor", at(80))
    last = ledger.finish(at(100))
    assert (last["visitor"].connected_s, last["visitor"].lost_s) == (50.0, 20.0)
    assert (last["kiosk"].connected_s, last["kiosk"].lost_s) == (39.5, 30.5)
    assert ledger.finish(at(200))["kiosk"].connected_s == 0.0


def test_hanging_up_on_purpose_is_not_lost_time_but_a_drop_after_rejoining_is() -> None:
    ledger = CallLedger()
    ledger.connected("visitor", at(0))
    ledger.expect_leave("visitor")
    ledger.disconnected("visitor", at(60))  # the visitor pressed "leave"
    assert not ledger.in_call("visitor")
    ledger.connected("visitor", at(300))  # ... and came back
    ledger.disconnected("visitor", at(400))  # then the network dropped
    last = ledger.finish(at(500))
    assert (last["visitor"].connected_s, last["visitor"].lost_s) == (160.0, 100.0)


def test_silent_media_is_lost_time_from_the_last_packet_to_the_first_one_back() -> None:
    """The connection stays up (ICE has not noticed); the silence is reported 2 s late, after
    a checkpoint already counted it as connected time: it moves to lost time."""
    ledger = CallLedger()
    shares = []
    ledger.connected("visitor", at(0))
    ledger.media("visitor", True, at(0.2))
    shares.append(ledger.checkpoint(at(12)))
    ledger.media("visitor", False, at(10))  # the last packet before the silence
    shares.append(ledger.checkpoint(at(13)))
    assert (shares[-1]["visitor"].connected_s, shares[-1]["visitor"].lost_s) == (-2.0, 3.0)
    ledger.media("visitor", True, at(16))  # the first packet back
    ledger.media("visitor", False, at(20))
    shares.append(ledger.checkpoint(at(25.8)))
    ledger.media("visitor", True, at(25.5))  # reported after a checkpoint: moved back
    ledger.media("kiosk", False, at(21))  # a side that is not in the call loses nothing
    shares.append(ledger.finish(at(30)))
    lost = sum(share["visitor"].lost_s for share in shares)
    connected = sum(share["visitor"].connected_s for share in shares)
    assert abs(lost - (6.0 + 5.5)) < 1e-9
    assert abs(connected - (30 - 11.5)) < 1e-9
    assert all(share["kiosk"].lost_s == share["kiosk"].connected_s == 0 for share in shares)


def test_after_a_restart_the_sides_in_the_call_lose_time_until_their_media_returns() -> None:
    ledger = CallLedger()
    ledger.resume_after_restart("visitor", at(100))
    ledger.resume_after_restart("kiosk", at(100))
    ledger.connected("kiosk", at(130))
    ledger.media("kiosk", True, at(131))
    last = ledger.finish(at(160))
    assert (last["kiosk"].lost_s, last["kiosk"].connected_s) == (31.0, 29.0)
    assert (last["visitor"].lost_s, last["visitor"].connected_s) == (60.0, 0.0)


def test_downtime_is_lost_by_the_sides_that_were_in_the_call() -> None:
    visit = Visit(
        id=7,
        start_at=at(-60),
        ledger_at=at(0),
        visitor_in_call=True,
        kiosk_in_call=False,
        visitor_lost_s=4.0,
        kiosk_lost_s=0.0,
    )
    assert count_downtime(visit, at(25), keep_open=True) == 25.0
    assert (visit.visitor_lost_s, visit.kiosk_lost_s, visit.ledger_at) == (29.0, 0.0, at(25))
    assert count_downtime(visit, at(30), keep_open=False) == 5.0
    assert (visit.visitor_lost_s, visit.ledger_at, visit.visitor_in_call) == (34.0, None, False)
    assert count_downtime(visit, at(90), keep_open=False) == 0.0  # closed: nothing more


def test_downtime_in_the_waiting_room_is_not_lost_before_the_slot_starts() -> None:
    """Both sides waited for the slot when the server stopped: time lost from the start on."""
    visit = Visit(
        id=8,
        start_at=at(30),
        ledger_at=at(0),
        visitor_in_call=True,
        kiosk_in_call=True,
        visitor_lost_s=0.0,
        kiosk_lost_s=0.0,
    )
    assert count_downtime(visit, at(20), keep_open=True) == 0.0  # back before the start
    assert (visit.visitor_lost_s, visit.kiosk_lost_s, visit.ledger_at) == (0.0, 0.0, at(20))
    assert count_downtime(visit, at(45), keep_open=False) == 15.0
    assert (visit.visitor_lost_s, visit.kiosk_lost_s) == (15.0, 15.0)


def test_nothing_counts_in_the_waiting_room_before_the_slot_starts() -> None:
    """Both sides join and connect early; the ledger counts from the slot's start only."""
    ledger = CallLedger(counts_from=at(60))
    ledger.connected("visitor", at(0))
    ledger.connected("kiosk", at(10))
    ledger.media("visitor", True, at(1))
    ledger.media("kiosk", True, at(11))
    early = ledger.checkpoint(at(40))
    assert all((a.connected_s, a.lost_s) == (0.0, 0.0) for a in early.values())
    ledger.media("kiosk", False, at(45))  # a silence in the waiting room: not lost yet
    ledger.media("kiosk", True, at(70))  # back 10 s after the start: those 10 s are lost
    ledger.disconnected("visitor", at(50))  # dropped before the start: lost from the start
    ledger.connected("visitor", at(65))
    ledger.media("visitor", True, at(66))
    late = ledger.finish(at(100))
    assert (late["kiosk"].connected_s, late["kiosk"].lost_s) == (30.0, 10.0)
    assert (late["visitor"].connected_s, late["visitor"].lost_s) == (34.0, 6.0)


def test_the_flow_watch_dates_a_silence_and_a_return_exactly_however_late_it_looks() -> None:
    watch = MediaFlowWatch()
    assert watch.check(0.0) == []  # nothing heard yet: nothing to say
    for t in (1.0, 1.02, 1.04):
        watch.presence.heard(t)
    assert watch.check(1.5) == [(True, 1.0)]  # the first media of a connection
    assert watch.check(1.04 + SILENCE_AFTER) == []
    assert watch.check(4.0) == [(False, 1.04)]  # silent for more than 2 s: since 1.04
    watch.presence.heard(9.0)
    watch.presence.heard(9.02)
    assert watch.check(9.3) == [(True, 9.0)]
    # A 2.5 s silence that starts and ends between two checks is still reported.
    watch.presence.heard(11.0)
    watch.presence.heard(13.5)
    assert watch.check(13.6) == [(False, 11.0), (True, 13.5)]
    watch.reset()  # a new connection: its first packet is a start
    watch.presence.heard(20.0)
    assert watch.check(20.1) == [(True, 20.0)]
