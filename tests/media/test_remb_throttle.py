"""A receiver's REMBs go back at libwebrtc's pace: one per 200 ms, a real drop at once."""

from __future__ import annotations

import itertools

from vvserver.media.remb_throttle import REMB_INTERVAL, RembThrottle


def test_an_estimate_each_frame_goes_back_five_times_a_second() -> None:
    throttle = RembThrottle()
    sent = [t for t in range(300) if throttle.due(1_000_000 + t, t / 30)]  # rising, 10 s
    assert 40 <= len(sent) <= 51  # at most 5 a second, not 30
    gaps = [(b - a) / 30 for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= REMB_INTERVAL


def test_a_drop_of_three_percent_or_more_goes_at_once_and_a_small_one_waits() -> None:
    throttle = RembThrottle()
    assert throttle.due(1_000_000, 0.0)
    assert not throttle.due(980_000, 0.03)  # -2%: waits
    assert throttle.due(960_000, 0.06)  # -4%: at once
    assert throttle.due(500_000, 0.07)  # congestion: each further drop at once
    assert not throttle.due(600_000, 0.1)  # rising again: waits its turn
    assert throttle.due(600_000, 0.07 + REMB_INTERVAL)
