"""aiortc's `AimdRateControl` (the REMB estimator's rate control) as a slots class, same code.

Part of the port of aiortc 1.16.0's `rate.py` (BSD-licensed, Copyright (c) Jeremy Lainé) that
`bitrate_estimator.LeanRemoteBitrateEstimator` uses; see that module for what the port changes
(only how, never what) and `tests/media/test_bitrate_estimator.py` for the check against aiortc.
The bandwidth usage and rate control states are ints (the values of aiortc's Enums); `state`
gives the Enum member back.
"""

from __future__ import annotations

import math

from aiortc.rate import BandwidthUsage, RateControlState

__all__ = ["LeanAimdRateControl"]

# AimdRateControl.feedback_interval()
FEEDBACK_INTERVAL_MS = 500

# BandwidthUsage values
NORMAL = BandwidthUsage.NORMAL.value
UNDERUSING = BandwidthUsage.UNDERUSING.value
OVERUSING = BandwidthUsage.OVERUSING.value
# RateControlState values
HOLD = RateControlState.HOLD.value
INCREASE = RateControlState.INCREASE.value
DECREASE = RateControlState.DECREASE.value


class LeanAimdRateControl:
    """aiortc's `AimdRateControl`, with an int `_state`."""

    __slots__ = (
        "_state",
        "avg_max_bitrate_kbps",
        "current_bitrate",
        "current_bitrate_initialized",
        "first_estimated_throughput_time",
        "last_change_ms",
        "latest_estimated_throughput",
        "near_max",
        "rtt",
        "var_max_bitrate_kbps",
    )

    def __init__(self) -> None:
        self.avg_max_bitrate_kbps: float | None = None
        self.var_max_bitrate_kbps = 0.4
        self.current_bitrate = 30000000
        self.current_bitrate_initialized = False
        self.first_estimated_throughput_time: int | None = None
        self.last_change_ms: int | None = None
        self.near_max = False
        self.latest_estimated_throughput = 30000000
        self.rtt = 200
        self._state = HOLD

    @property
    def state(self) -> RateControlState:
        return RateControlState(self._state)

    def feedback_interval(self) -> int:
        return FEEDBACK_INTERVAL_MS

    def update(
        self, bandwidth_usage: int, estimated_throughput: int | None, now_ms: int
    ) -> int | None:
        """aiortc's `update`, with `bandwidth_usage` as a `BandwidthUsage` value."""
        if not self.current_bitrate_initialized and estimated_throughput is not None:
            if self.first_estimated_throughput_time is None:
                self.first_estimated_throughput_time = now_ms
            elif now_ms - self.first_estimated_throughput_time > 3000:
                self.current_bitrate = estimated_throughput
                self.current_bitrate_initialized = True

        # wait for initialisation or overuse
        if not self.current_bitrate_initialized and bandwidth_usage != OVERUSING:
            return None

        # update state
        state = self._state
        if bandwidth_usage == NORMAL and state == HOLD:
            self.last_change_ms = now_ms
            state = INCREASE
        elif bandwidth_usage == OVERUSING:
            state = DECREASE
        elif bandwidth_usage == UNDERUSING:
            state = HOLD

        # helper variables
        new_bitrate = self.current_bitrate
        if estimated_throughput is not None:
            self.latest_estimated_throughput = estimated_throughput
        else:
            estimated_throughput = self.latest_estimated_throughput
        estimated_throughput_kbps = estimated_throughput / 1000

        # update bitrate
        if state == INCREASE:
            # if the estimated throughput increases significantly,
            # clear estimated max throughput
            if self.avg_max_bitrate_kbps is not None:
                sigma_kbps = math.sqrt(self.var_max_bitrate_kbps * self.avg_max_bitrate_kbps)
                if estimated_throughput_kbps >= self.avg_max_bitrate_kbps + 3 * sigma_kbps:
                    self.near_max = False
                    self.avg_max_bitrate_kbps = None

            # additive or multiplicative rate increase, depending on whether
            # we are close to the maximum throughput
            if self.near_max:
                assert self.last_change_ms is not None  # set when the state became INCREASE
                new_bitrate += self._additive_rate_increase(self.last_change_ms, now_ms)
            else:
                new_bitrate += self._multiplicative_rate_increase(
                    new_bitrate, self.last_change_ms, now_ms
                )
            self.last_change_ms = now_ms
        elif state == DECREASE:
            # if the estimated throughput drops significantly,
            # clear estimated max throughput
            if self.avg_max_bitrate_kbps is not None:
                sigma_kbps = math.sqrt(self.var_max_bitrate_kbps * self.avg_max_bitrate_kbps)
                if estimated_throughput_kbps < self.avg_max_bitrate_kbps - 3 * sigma_kbps:
                    self.avg_max_bitrate_kbps = None
            self._update_max_throughput_estimate(estimated_throughput_kbps)

            self.near_max = True
            new_bitrate = round(0.85 * estimated_throughput)
            self.last_change_ms = now_ms
            state = HOLD
        self._state = state

        self.current_bitrate = self._clamp_bitrate(new_bitrate, estimated_throughput)
        return self.current_bitrate

    def _additive_rate_increase(self, last_ms: int, now_ms: int) -> int:
        return int((now_ms - last_ms) * self._near_max_rate_increase() / 1000)

    def _clamp_bitrate(self, new_bitrate: int, estimated_throughput: int) -> int:
        max_bitrate = max(int(1.5 * estimated_throughput) + 10000, self.current_bitrate)
        return min(new_bitrate, max_bitrate)

    def _multiplicative_rate_increase(
        self, new_bitrate: int, last_ms: int | None, now_ms: int
    ) -> int:
        alpha = 1.08
        if last_ms is not None:
            elapsed_ms = min(now_ms - last_ms, 1000)
            alpha = pow(alpha, elapsed_ms / 1000)
        return int(max((alpha - 1) * new_bitrate, 1000))

    def _near_max_rate_increase(self) -> int:
        bits_per_frame = self.current_bitrate / 30
        packets_per_frame = math.ceil(bits_per_frame / (8 * 1200))
        avg_packet_size_bits = bits_per_frame / packets_per_frame

        response_time = self.rtt + 100
        return max(4000, int((avg_packet_size_bits * 1000) / response_time))

    def _update_max_throughput_estimate(self, estimated_throughput_kbps: float) -> None:
        alpha = 0.05
        if self.avg_max_bitrate_kbps is None:
            self.avg_max_bitrate_kbps = estimated_throughput_kbps
        else:
            self.avg_max_bitrate_kbps = (
                1 - alpha
            ) * self.avg_max_bitrate_kbps + alpha * estimated_throughput_kbps

        norm = max(1, self.avg_max_bitrate_kbps)
        self.var_max_bitrate_kbps = (1 - alpha) * self.var_max_bitrate_kbps + alpha * (
            (self.avg_max_bitrate_kbps - estimated_throughput_kbps) ** 2
        ) / norm
        self.var_max_bitrate_kbps = max(0.4, min(self.var_max_bitrate_kbps, 2.5))
