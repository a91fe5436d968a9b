"""A lean receive-side bitrate estimator: aiortc's `RemoteBitrateEstimator`, same results.

This is a port of `aiortc/rate.py` from aiortc 1.16.0 (the version pinned in pyproject.toml;
aiortc is BSD-licensed, Copyright (c) Jeremy Lainé; its estimator is itself adapted from the
webrtc.org codebase). `LeanRemoteBitrateEstimator.add()` returns exactly what aiortc's
`RemoteBitrateEstimator.add()` returns for the same calls, the same ints and bit-for-bit the same
floats in its state (the same arithmetic, in the same order, on the same types; constants
unchanged). `tests/media/test_bitrate_estimator.py` checks this against aiortc itself.

What differs is only how it is computed, so that it costs less per call (it is fed once per
received video frame):

* `RemoteBitrateEstimator`, `InterArrival`, `OveruseEstimator`, `OveruseDetector` and the
  incoming-bitrate `RateCounter` are one `__slots__` class; their state is plain fields (the
  current and previous timestamp groups, the 2x2 Kalman covariance), so a call allocates no
  `TimestampGroup` / `InterArrivalDelta` objects or lists, and makes no method calls between them.
* The minimum frame period (aiortc: `min()` over a list of the last 60 timestamp deltas, and
  `list.pop(0)`, on every call) comes from a monotonic deque, amortised O(1); it is the same
  minimum (the deltas are non-negative floats, never NaN or -0.0).
* The incoming bitrate keeps only the milliseconds that had data (aiortc's `RateCounter` walks a
  bucket per elapsed millisecond); each entry is erased at the millisecond aiortc would erase its
  bucket, including for an arrival time earlier than the window's origin.
* The bandwidth usage and rate control states are ints (the values of aiortc's `BandwidthUsage`
  and `RateControlState`), compared as ints in the hot path; `hypothesis` and
  `LeanAimdRateControl.state` give the Enum members back.
* The rate control (`AimdRateControl`, called at most once per call) is a slots class with the
  same code, in `aimd_rate_control`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque

from aiortc.rate import BandwidthUsage

from vvserver.media.aimd_rate_control import (
    FEEDBACK_INTERVAL_MS,
    NORMAL,
    OVERUSING,
    UNDERUSING,
    LeanAimdRateControl,
)

__all__ = ["LeanAimdRateControl", "LeanRemoteBitrateEstimator"]

# aiortc.rate's constants, unchanged
BURST_DELTA_THRESHOLD_MS = 5
MAX_ADAPT_OFFSET_MS = 15
MIN_NUM_DELTAS = 60
DELTA_COUNTER_MAX = 1000
MIN_FRAME_PERIOD_HISTORY_LENGTH = 60
INTER_ARRIVAL_SHIFT = 26
TIMESTAMP_GROUP_LENGTH_MS = 5
TIMESTAMP_TO_MS = 1000.0 / (1 << INTER_ARRIVAL_SHIFT)

# RemoteBitrateEstimator's incoming bitrate: RateCounter(1000, 8000)
RATE_WINDOW_MS = 1000
RATE_SCALE = 8000
# InterArrival((TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT) // 1000, TIMESTAMP_TO_MS)
GROUP_LENGTH = (TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT) // 1000
# OveruseEstimator.process_noise and OveruseDetector's k_up, k_down, overuse_time_threshold
PROCESS_NOISE_0 = 1e-13
PROCESS_NOISE_1 = 1e-3
K_UP = 0.0087
K_DOWN = 0.039
OVERUSE_TIME_THRESHOLD = 10

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


class LeanRemoteBitrateEstimator:
    """aiortc's `RemoteBitrateEstimator`, with its `InterArrival`, `OveruseEstimator`,
    `OveruseDetector` and incoming-bitrate `RateCounter` folded in (see the module docstring)."""

    __slots__ = (  # (see __init__ for which aiortc object each field comes from)
        "_avg_noise",
        "_detector_last_update_ms",
        "_detector_previous_offset",
        "_e00",
        "_e01",
        "_e10",
        "_e11",
        "_first_timestamp",
        "_group_arrival",
        "_group_size",
        "_history",
        "_history_min",
        "_hypothesis",
        "_last_timestamp",
        "_num_of_deltas",
        "_offset",
        "_overuse_counter",
        "_overuse_time",
        "_previous_arrival",
        "_previous_last_timestamp",
        "_previous_offset",
        "_previous_size",
        "_rate_ms",
        "_rate_origin_ms",
        "_rate_total",
        "_rate_values",
        "_slope",
        "_threshold",
        "_var_noise",
        "incoming_bitrate_initialized",
        "last_update_ms",
        "rate_control",
        "ssrcs",
    )

    def __init__(self) -> None:
        # OveruseEstimator (E: the 2x2 covariance)
        self._e00 = 100.0
        self._e01 = 0.0
        self._e10 = 0.0
        self._e11 = 0.1
        self._avg_noise = 0.0
        self._var_noise: float = 50.0
        self._slope = 1 / 64
        self._offset = 0.0
        self._previous_offset = 0.0
        self._num_of_deltas = 0
        # the last MIN_FRAME_PERIOD_HISTORY_LENGTH timestamp deltas, and their monotonic
        # (non-decreasing) deque: its first value is their minimum
        self._history: deque[float] = deque()
        self._history_min: deque[float] = deque()

        # OveruseDetector
        self._hypothesis = NORMAL
        self._threshold: float = 12.5
        self._detector_last_update_ms: int | None = None
        self._overuse_counter = 0
        self._overuse_time: float | None = None
        self._detector_previous_offset = 0.0

        # InterArrival: its current and previous TimestampGroup
        self._first_timestamp: int | None = None  # None: no current group yet
        self._last_timestamp = 0
        self._group_arrival = 0
        self._group_size = 0
        self._previous_last_timestamp: int | None = None  # None: no previous group yet
        self._previous_arrival = 0
        self._previous_size = 0

        # RateCounter: one entry per millisecond that had data (in time order)
        self._rate_ms: deque[int] = deque()
        self._rate_values: deque[int] = deque()
        self._rate_origin_ms: int | None = None
        self._rate_total = 0

        # RemoteBitrateEstimator
        self.incoming_bitrate_initialized = True
        self.last_update_ms: int | None = None
        self.rate_control = LeanAimdRateControl()
        self.ssrcs: dict[int, int] = {}

    @property
    def hypothesis(self) -> BandwidthUsage:
        """The overuse detector's state (aiortc: `estimator.detector.state()`)."""
        return BandwidthUsage(self._hypothesis)

    def incoming_bitrate(self, now_ms: int) -> int | None:
        """aiortc's `estimator.incoming_bitrate.rate(now_ms)`."""
        origin = self._rate_origin_ms
        if origin is None:
            return None
        origin = self._erase_old(origin, now_ms)
        active_window_size = now_ms - origin + 1
        if self._rate_ms and active_window_size > 1:
            return round(RATE_SCALE * self._rate_total / active_window_size)
        return None

    def _erase_old(self, origin: int, now_ms: int) -> int:
        new_origin_ms = now_ms - RATE_WINDOW_MS + 1
        if origin < new_origin_ms:
            times = self._rate_ms
            if times and times[0] < new_origin_ms:
                values = self._rate_values
                total = self._rate_total
                while times and times[0] < new_origin_ms:
                    times.popleft()
                    total -= values.popleft()
                self._rate_total = total
            self._rate_origin_ms = origin = new_origin_ms
        return origin

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        now = arrival_time_ms
        timestamp = abs_send_time << 8

        # make note of SSRC
        self.ssrcs[ssrc] = now

        # update incoming bitrate: aiortc's `rate(now) is not None`, a reset, then `add()`
        origin = self._rate_origin_ms
        if origin is not None:
            new_origin_ms = now - RATE_WINDOW_MS + 1
            if origin < new_origin_ms:
                origin = self._erase_old(origin, now)
            if self._rate_ms and now - origin + 1 > 1:
                self.incoming_bitrate_initialized = True
            elif self.incoming_bitrate_initialized:
                self._rate_ms.clear()
                self._rate_values.clear()
                self._rate_total = 0
                self._rate_origin_ms = origin = None
                self.incoming_bitrate_initialized = False
        elif self.incoming_bitrate_initialized:
            self.incoming_bitrate_initialized = False  # the reset of an empty counter
        times = self._rate_ms
        if origin is None:
            self._rate_origin_ms = now
            times.append(now)
            self._rate_values.append(payload_size)
        elif now >= origin:
            if not times or now >= times[-1]:
                times.append(now)
                self._rate_values.append(payload_size)
            else:
                self._insert_rate_entry(now, payload_size)
        else:
            # before the origin: aiortc's bucket index wraps round the window
            self._insert_rate_entry(origin + (now - origin) % RATE_WINDOW_MS, payload_size)
        self._rate_total += payload_size

        # calculate inter-arrival deltas
        first_timestamp = self._first_timestamp
        if first_timestamp is None:
            self._first_timestamp = self._last_timestamp = timestamp
            self._group_size = payload_size
            self._group_arrival = now
        elif ((timestamp - first_timestamp) & _MASK) < _HALF:  # else: out of order, ignored
            last_timestamp = self._last_timestamp
            group_arrival = self._group_arrival
            # belongs to a burst?
            timestamp_delta_ms = round(TIMESTAMP_TO_MS * ((timestamp - last_timestamp) & _MASK))
            arrival_time_delta = now - group_arrival
            if (
                timestamp_delta_ms != 0
                and not (
                    (arrival_time_delta - timestamp_delta_ms) < 0
                    and arrival_time_delta <= BURST_DELTA_THRESHOLD_MS
                )
                and ((timestamp - first_timestamp) & _MASK) > GROUP_LENGTH
            ):
                # a new timestamp group: the deltas to the previous one, then shift groups
                group_size = self._group_size
                previous_last_timestamp = self._previous_last_timestamp
                previous_arrival = self._previous_arrival
                previous_size = self._previous_size
                self._previous_last_timestamp = last_timestamp
                self._previous_arrival = group_arrival
                self._previous_size = group_size
                self._first_timestamp = self._last_timestamp = timestamp
                self._group_size = payload_size
                self._group_arrival = now
                if previous_last_timestamp is not None:
                    self._update(
                        group_arrival - previous_arrival,
                        ((last_timestamp - previous_last_timestamp) & _MASK) * TIMESTAMP_TO_MS,
                        group_size - previous_size,
                        now,
                    )
            else:
                if (timestamp < last_timestamp and (last_timestamp - timestamp) > _HALF) or (
                    timestamp > last_timestamp and (timestamp - last_timestamp) < _HALF
                ):
                    self._last_timestamp = timestamp
                self._group_size += payload_size
                self._group_arrival = now

        hypothesis = self._hypothesis
        last_update_ms = self.last_update_ms
        if (
            last_update_ms is None
            or (now - last_update_ms) > FEEDBACK_INTERVAL_MS
            or hypothesis == OVERUSING
        ):
            target_bitrate = self.rate_control.update(hypothesis, self.incoming_bitrate(now), now)
            if target_bitrate is not None:
                self.last_update_ms = now
                return target_bitrate, list(self.ssrcs)
        return None

    def _insert_rate_entry(self, ms: int, value: int) -> None:
        """An entry out of time order (rare: the clock went back); kept in order."""
        index = bisect_right(self._rate_ms, ms)
        self._rate_ms.insert(index, ms)
        self._rate_values.insert(index, value)

    def _update(
        self, time_delta_ms: int, timestamp_delta_ms: float, size_delta: int, now_ms: int
    ) -> None:
        """aiortc's `OveruseEstimator.update(..., detector.state(), now_ms)`, then
        `OveruseDetector.detect(estimator.offset(), timestamp_delta_ms, ...)`."""
        # update_min_frame_period: the minimum of the last 60 timestamp deltas, this one included
        history = self._history
        history_min = self._history_min
        if len(history) >= MIN_FRAME_PERIOD_HISTORY_LENGTH and history.popleft() == history_min[0]:
            history_min.popleft()
        while history_min and history_min[-1] > timestamp_delta_ms:
            history_min.pop()
        history_min.append(timestamp_delta_ms)
        history.append(timestamp_delta_ms)
        min_frame_period = history_min[0]

        t_ts_delta = time_delta_ms - timestamp_delta_ms
        num_of_deltas = self._num_of_deltas + 1
        if num_of_deltas > DELTA_COUNTER_MAX:
            num_of_deltas = DELTA_COUNTER_MAX
        self._num_of_deltas = num_of_deltas

        # update Kalman filter
        hypothesis = self._hypothesis
        offset = self._offset
        e00 = self._e00 + PROCESS_NOISE_0
        e01 = self._e01
        e10 = self._e10
        e11 = self._e11 + PROCESS_NOISE_1
        if (hypothesis == OVERUSING and offset < self._previous_offset) or (
            hypothesis == UNDERUSING and offset > self._previous_offset
        ):
            e11 += 10 * PROCESS_NOISE_1

        h0 = size_delta  # h = [size_delta, 1.0]; x * 1.0 == x
        eh0 = e00 * h0 + e01
        eh1 = e10 * h0 + e11

        # update noise estimate
        residual = t_ts_delta - self._slope * h0 - offset
        if hypothesis == NORMAL:
            var_noise = self._var_noise
            max_residual = 3.0 * math.sqrt(var_noise)
            if abs(residual) < max_residual:
                noise = residual
            else:
                noise = -max_residual if residual < 0 else max_residual
            # update_noise_estimate(noise, min_frame_period)
            alpha = 0.002 if num_of_deltas > 10 * 30 else 0.01
            beta = pow(1 - alpha, min_frame_period * 30.0 / 1000.0)
            avg_noise = self._avg_noise = beta * self._avg_noise + (1 - beta) * noise
            var_noise = beta * var_noise + (1 - beta) * (avg_noise - noise) ** 2
            if var_noise < 1:
                var_noise = 1
            self._var_noise = var_noise

        denom = self._var_noise + h0 * eh0 + eh1
        k0 = eh0 / denom
        k1 = eh1 / denom

        ikh00 = 1.0 - k0 * h0
        ikh01 = -k0
        ikh10 = -k1 * h0
        ikh11 = 1.0 - k1

        # update state
        self._e00 = e00 * ikh00 + e10 * ikh01
        self._e01 = e01 * ikh00 + e11 * ikh01
        self._e10 = e00 * ikh10 + e10 * ikh11
        self._e11 = e01 * ikh10 + e11 * ikh11

        self._previous_offset = offset
        self._slope += k0 * residual
        self._offset = offset = offset + k1 * residual

        # OveruseDetector.detect(offset, timestamp_delta_ms, num_of_deltas, now_ms)
        if num_of_deltas < 2:
            return
        modified_offset = (
            num_of_deltas if num_of_deltas < MIN_NUM_DELTAS else MIN_NUM_DELTAS
        ) * offset
        threshold = self._threshold
        if modified_offset > threshold:
            overuse_time = self._overuse_time
            if overuse_time is None:
                overuse_time = timestamp_delta_ms / 2
            else:
                overuse_time += timestamp_delta_ms
            self._overuse_counter += 1

            if (
                overuse_time > OVERUSE_TIME_THRESHOLD
                and self._overuse_counter > 1
                and offset >= self._detector_previous_offset
            ):
                self._overuse_counter = 0
                overuse_time = 0
                self._hypothesis = OVERUSING
            self._overuse_time = overuse_time
        elif modified_offset < -threshold:
            self._overuse_counter = 0
            self._overuse_time = None
            self._hypothesis = UNDERUSING
        else:
            self._overuse_counter = 0
            self._overuse_time = None
            self._hypothesis = NORMAL
        self._detector_previous_offset = offset

        # update_threshold(modified_offset, now_ms)
        last_update_ms = self._detector_last_update_ms
        if last_update_ms is None:
            last_update_ms = now_ms
        abs_offset = abs(modified_offset)
        if abs_offset > threshold + MAX_ADAPT_OFFSET_MS:
            self._detector_last_update_ms = now_ms
            return
        k = K_DOWN if abs_offset < threshold else K_UP
        time_delta = now_ms - last_update_ms
        if time_delta > 100:
            time_delta = 100
        threshold += k * (abs_offset - threshold) * time_delta
        self._threshold = max(6, min(threshold, 600))
        self._detector_last_update_ms = now_ms
