"""`LeanRemoteBitrateEstimator` gives exactly what aiortc's `RemoteBitrateEstimator` gives, and
`_rtp_native.NativeBitrateEstimator` (the same in C) exactly what `LeanRemoteBitrateEstimator`
gives.

Each scenario feeds the same calls to all three (a fixed-seed random generator; a simulated
sender whose rate follows the REMBs, over a bottleneck link with a queue) and compares every
return value and, after every call, the estimators' state bit for bit (floats by `float.hex`,
ints and floats told apart): aiortc's and the Python one's in aiortc's terms, the Python one's
and the C one's field by field. Each also checks that the REMB decisions change in it, so that
it cannot pass vacuously. Odd values (huge, negative, zero sizes, the errors Python raises on
them) and bad arguments go to the Python and the C one.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import sys
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCPeerConnection, rate
from aiortc.rate import BandwidthUsage, RemoteBitrateEstimator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media import (
    _rtp_native,
    aimd_rate_control,
    bitrate_estimator,
    inbound_stream,
    srtp_session,
)
from vvserver.media._rtp_native import NativeBitrateEstimator
from vvserver.media.aiortc_hooks import (
    RECEIVER_BITRATE_ESTIMATOR_ATTR,
    cap_receiver_remb,
    rtc_configuration,
)
from vvserver.media.bitrate_estimator import LeanRemoteBitrateEstimator
from vvserver.media.inbound_stream import lean_estimator
from vvserver.media.room import VisitRoom

NTP_MS = 3_900_000_000_000  # arrival times are NTP-epoch milliseconds (aiortc's clock)
SSRC = 0x1234_5678

Call = tuple[int, int, int, int]  # arrival_time_ms, abs_send_time, payload_size, ssrc


def abs_send_time(send_ms: float) -> int:
    """6.18 fixed-point seconds, 24 bits: wraps every 64 s."""
    return int(send_ms * (1 << 18) / 1000) & 0xFFFFFF


@dataclass
class Sender:
    """What the scenario's sender does with the REMBs: sends at the latest one (clamped)."""

    bitrate: float
    low: float = 150_000
    high: float = 2_500_000
    rembs: list[int] = field(default_factory=list)

    def remb(self, bitrate: int) -> None:
        self.rembs.append(bitrate)
        self.bitrate = max(self.low, min(float(bitrate), self.high))


class Link:
    """A bottleneck: a FIFO queue drained at `capacity(send_ms)` bit/s, then a fixed delay."""

    def __init__(self, capacity: Callable[[float], float], delay_ms: float = 20.0) -> None:
        self.capacity = capacity
        self.delay_ms = delay_ms
        self.free_at = 0.0

    def send(self, send_ms: float, size: int) -> float:
        start = max(send_ms, self.free_at)
        self.free_at = start + size * 8 * 1000 / self.capacity(send_ms)
        return self.free_at + self.delay_ms


def frames(
    rng: random.Random,
    sender: Sender,
    link: Link,
    count: int,
    *,
    start_ms: float = 10_000.0,
    fps: float = 30.0,
    jitter_ms: float = 2.0,
    gap: Callable[[int], float] = lambda i: 0.0,
    packets: bool = False,
) -> Iterator[Call]:
    """Video frames at `fps` (plus `gap(i)` ms of silence before frame i), sized for the
    sender's rate; one call per frame or, with `packets`, one per 1200-byte packet."""
    send_ms = start_ms
    last_arrival = 0
    for i in range(count):
        send_ms += 1000 / fps + gap(i)
        size = max(200, int(sender.bitrate / fps / 8 * rng.uniform(0.6, 1.4)))
        sizes = [1200] * (size // 1200) + [size % 1200] if packets else [size]
        for j, part in enumerate(s for s in sizes if s):
            pace_ms = send_ms + j * 0.3
            arrival = link.send(pace_ms, part) + rng.uniform(0, jitter_ms)
            last_arrival = max(last_arrival, int(NTP_MS + arrival))  # the receive order
            yield last_arrival, abs_send_time(pace_ms), part, SSRC


def state(estimator: Any) -> tuple[Any, ...]:
    """The estimator's state in aiortc's terms, floats as hex (bit for bit)."""

    def exact(value: Any) -> Any:
        return (type(value).__name__, value.hex() if isinstance(value, float) else value)

    if isinstance(estimator, RemoteBitrateEstimator):
        e, d, c = estimator.estimator, estimator.detector, estimator.rate_control
        values: list[Any] = [
            *e.E[0],
            *e.E[1],
            e.avg_noise,
            e.var_noise,
            e.slope,
            e.offset(),
            e.previous_offset,
            e.num_of_deltas(),
            d.state().value,
            d.threshold,
            d.last_update_ms,
            d.overuse_counter,
            d.overuse_time,
            d.previous_offset,
            estimator.incoming_bitrate._origin_ms,
            estimator.incoming_bitrate._total.count,
            estimator.incoming_bitrate._total.value,
        ]
    else:
        c = estimator.rate_control
        values = [
            estimator._e00,
            estimator._e01,
            estimator._e10,
            estimator._e11,
            estimator._avg_noise,
            estimator._var_noise,
            estimator._slope,
            estimator._offset,
            estimator._previous_offset,
            estimator._num_of_deltas,
            estimator.hypothesis.value,
            estimator._threshold,
            estimator._detector_last_update_ms,
            estimator._overuse_counter,
            estimator._overuse_time,
            estimator._detector_previous_offset,
            estimator._rate_origin_ms,
            len(estimator._rate_ms),
            estimator._rate_total,
        ]
    values += [
        estimator.last_update_ms,
        estimator.incoming_bitrate_initialized,
        c.avg_max_bitrate_kbps,
        c.var_max_bitrate_kbps,
        c.current_bitrate,
        c.current_bitrate_initialized,
        c.last_change_ms,
        c.near_max,
        c.state.value,
    ]
    return tuple(exact(value) for value in values)


LEAN_FIELDS = (
    "_e00",
    "_e01",
    "_e10",
    "_e11",
    "_avg_noise",
    "_var_noise",
    "_slope",
    "_offset",
    "_previous_offset",
    "_num_of_deltas",
    "_hypothesis",
    "_threshold",
    "_detector_last_update_ms",
    "_overuse_counter",
    "_overuse_time",
    "_detector_previous_offset",
    "_first_timestamp",
    "_last_timestamp",
    "_group_arrival",
    "_group_size",
    "_previous_last_timestamp",
    "_previous_arrival",
    "_previous_size",
    "_rate_origin_ms",
    "_rate_total",
    "incoming_bitrate_initialized",
    "last_update_ms",
)
RATE_CONTROL_FIELDS = (
    "avg_max_bitrate_kbps",
    "var_max_bitrate_kbps",
    "current_bitrate",
    "current_bitrate_initialized",
    "first_estimated_throughput_time",
    "last_change_ms",
    "near_max",
    "latest_estimated_throughput",
    "rtt",
    "_state",
)


def exact(value: Any) -> Any:
    """A value with its type, floats bit for bit (NaN equal to NaN, -0.0 not equal to 0.0)."""
    if isinstance(value, tuple | list):
        return tuple(exact(item) for item in value)
    return (type(value).__name__, value.hex() if isinstance(value, float) else value)


def lean_state(estimator: Any) -> dict[str, Any]:
    """Every field of a `LeanRemoteBitrateEstimator` or a `NativeBitrateEstimator`."""
    values = {name: exact(getattr(estimator, name)) for name in LEAN_FIELDS}
    values["_history"] = exact(tuple(estimator._history))
    values["_rate_ms"] = exact(tuple(estimator._rate_ms))
    values["_rate_values"] = exact(tuple(estimator._rate_values))
    values["ssrcs"] = exact(list(estimator.ssrcs.items()))
    values["hypothesis"] = estimator.hypothesis
    control = estimator.rate_control
    for name in RATE_CONTROL_FIELDS:
        values["rate_control." + name] = exact(getattr(control, name))
    return values


def assert_same_state(python: Any, native: Any, where: str) -> None:
    expected, got = lean_state(python), lean_state(native)
    differences = {
        name: (expected[name], got[name]) for name in expected if got[name] != expected[name]
    }
    assert not differences, f"{where}: (Python, C) {differences}"


def assert_same_result(expected: Any, got: Any, where: str) -> None:
    assert exact(got) == exact(expected), f"{where}: {got} != {expected}"


@dataclass
class Run:
    calls: list[Call] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    hypotheses: set[BandwidthUsage] = field(default_factory=set)


def run_both(
    calls: Iterator[Call], sender: Sender | None = None, *, check_state: bool = True
) -> Run:
    theirs, ours = RemoteBitrateEstimator(), LeanRemoteBitrateEstimator()
    native = NativeBitrateEstimator()
    run = Run()
    for n, (arrival, abs_time, size, ssrc) in enumerate(calls):
        expected = theirs.add(
            arrival_time_ms=arrival, abs_send_time=abs_time, payload_size=size, ssrc=ssrc
        )
        got = ours.add(
            arrival_time_ms=arrival, abs_send_time=abs_time, payload_size=size, ssrc=ssrc
        )
        assert got == expected, f"call {n}: {got} != {expected}"
        if expected is not None:
            assert got is not None
            assert type(got[0]) is type(expected[0])
        in_c = native.add(
            arrival_time_ms=arrival, abs_send_time=abs_time, payload_size=size, ssrc=ssrc
        )
        assert_same_result(got, in_c, f"C, call {n}")
        if check_state:
            assert state(ours) == state(theirs), f"state after call {n}"
            assert_same_state(ours, native, f"C, state after call {n}")
        run.calls.append((arrival, abs_time, size, ssrc))
        run.results.append(expected)
        run.hypotheses.add(theirs.detector.state())
        assert ours.hypothesis is theirs.detector.state()
        if expected is not None and sender is not None:
            sender.remb(expected[0])
    assert state(ours) == state(theirs)
    assert_same_state(ours, native, "C, at the end")
    return run


def changing(run: Run, *, decreases: int = 1) -> list[int]:
    """The REMB bitrates, checked to go both up and down."""
    rembs = [result[0] for result in run.results if result is not None]
    ups = sum(b > a for a, b in itertools.pairwise(rembs))
    downs = sum(b < a for a, b in itertools.pairwise(rembs))
    assert len(set(rembs)) > 5, rembs
    assert ups >= 1, rembs
    assert downs >= decreases, rembs
    return rembs


def test_the_constants_are_aiortcs() -> None:
    for name in (
        "BURST_DELTA_THRESHOLD_MS",
        "MAX_ADAPT_OFFSET_MS",
        "MIN_NUM_DELTAS",
        "DELTA_COUNTER_MAX",
        "MIN_FRAME_PERIOD_HISTORY_LENGTH",
        "INTER_ARRIVAL_SHIFT",
        "TIMESTAMP_GROUP_LENGTH_MS",
        "TIMESTAMP_TO_MS",
    ):
        assert getattr(bitrate_estimator, name) == getattr(rate, name), name
    estimator, detector = rate.OveruseEstimator(), rate.OveruseDetector()
    assert estimator.process_noise == [
        bitrate_estimator.PROCESS_NOISE_0,
        bitrate_estimator.PROCESS_NOISE_1,
    ]
    assert (detector.k_up, detector.k_down) == (bitrate_estimator.K_UP, bitrate_estimator.K_DOWN)
    assert detector.overuse_time_threshold == bitrate_estimator.OVERUSE_TIME_THRESHOLD
    assert rate.AimdRateControl().feedback_interval() == aimd_rate_control.FEEDBACK_INTERVAL_MS
    counter = RemoteBitrateEstimator().incoming_bitrate
    assert (counter._window_size, counter._scale) == (
        bitrate_estimator.RATE_WINDOW_MS,
        bitrate_estimator.RATE_SCALE,
    )


def test_steady_30_fps_with_jitter_gives_the_same_rembs() -> None:
    rng = random.Random(1)
    sender = Sender(bitrate=1_000_000, low=1_000_000)
    link = Link(lambda t: 50_000_000)
    run = run_both(frames(rng, sender, link, 4000, jitter_ms=6.0), sender)
    rembs = changing(run, decreases=0)
    assert len(rembs) > 100


def test_a_congested_link_is_detected_and_the_rate_decreases_the_same_way() -> None:
    rng = random.Random(2)
    sender = Sender(bitrate=2_000_000)
    # capacity ramps down from 3 to 0.6 Mbit/s: the queueing delay grows, then the sender adapts
    link = Link(lambda t: max(600_000.0, 3_000_000 - (t - 10_000) * 30))
    run = run_both(frames(rng, sender, link, 5000), sender)
    assert BandwidthUsage.OVERUSING in run.hypotheses
    changing(run, decreases=3)
    assert min(sender.rembs) < 1_000_000


def test_underuse_and_recovery_give_the_same_rembs() -> None:
    rng = random.Random(3)
    sender = Sender(bitrate=1_500_000)

    def capacity(t: float) -> float:
        phase = (t - 10_000) % 20_000
        return 800_000.0 if phase < 6_000 else 20_000_000.0  # a queue builds, then drains

    run = run_both(frames(rng, sender, Link(capacity), 5000), sender)
    assert {BandwidthUsage.OVERUSING, BandwidthUsage.UNDERUSING} <= run.hypotheses
    changing(run, decreases=3)


def test_abs_send_time_wrapping_at_2_to_the_24_gives_the_same_rembs() -> None:
    rng = random.Random(4)
    sender = Sender(bitrate=1_200_000)
    start = 64_000.0 - 3_000  # abs-send-time wraps 3 s in, and every 64 s after
    link = Link(lambda t: 1_500_000.0 if (t // 7_000) % 2 else 8_000_000.0)
    run = run_both(frames(rng, sender, link, 4000, start_ms=start), sender)
    wraps = sum(b[1] < a[1] for a, b in itertools.pairwise(run.calls))
    assert wraps >= 2  # at 3 s and 67 s
    assert BandwidthUsage.OVERUSING in run.hypotheses
    changing(run)


def test_out_of_order_frames_give_the_same_rembs() -> None:
    rng = random.Random(5)
    sender = Sender(bitrate=1_500_000)
    link = Link(lambda t: 1_800_000.0 if (t // 9_000) % 2 else 10_000_000.0)

    def reordered() -> Iterator[Call]:
        held: Call | None = None
        for call in frames(rng, sender, link, 5000, jitter_ms=4.0):
            if held is not None:
                # the later frame arrives first; the held one a millisecond or two later
                yield call
                yield call[0] + rng.randint(0, 2), held[1], held[2], held[3]
                held = None
            elif rng.random() < 0.08:
                held = call
            else:
                yield call

    run = run_both(reordered(), sender)
    changing(run)


def test_bursts_within_5_ms_fed_per_packet_give_the_same_rembs() -> None:
    rng = random.Random(6)
    sender = Sender(bitrate=1_500_000)
    link = Link(lambda t: 1_700_000.0 if (t // 8_000) % 2 else 12_000_000.0)
    # per packet (as aiortc's own path feeds it), and every 40th frame sent late in a burst
    calls = frames(
        rng, sender, link, 3000, packets=True, gap=lambda i: 0.0 if i % 40 else rng.uniform(30, 90)
    )
    run = run_both(calls, sender)
    assert BandwidthUsage.OVERUSING in run.hypotheses
    changing(run)


def test_long_gaps_give_the_same_rembs() -> None:
    rng = random.Random(7)
    sender = Sender(bitrate=1_000_000)
    link = Link(lambda t: 1_200_000.0 if (t // 11_000) % 2 else 6_000_000.0)

    def gap(i: int) -> float:
        return rng.choice([1_200.0, 2_500.0, 9_000.0]) if i % 300 == 299 else 0.0

    run = run_both(frames(rng, sender, link, 4000, gap=gap), sender)
    changing(run)


def test_several_ssrcs_and_a_clock_that_steps_back_give_the_same_rembs() -> None:
    rng = random.Random(8)
    sender = Sender(bitrate=1_500_000)
    link = Link(lambda t: 1_600_000.0 if (t // 8_000) % 2 else 9_000_000.0)

    def calls() -> Iterator[Call]:
        step = 0
        for n, (arrival, abs_time, size, _ssrc) in enumerate(frames(rng, sender, link, 5000)):
            if n % 700 == 699:
                step -= rng.choice([5, 40, 900, 1500])  # the wall clock is set back
            yield arrival + step, abs_time, size, SSRC + n % 3

    run = run_both(calls(), sender)
    changing(run)
    assert all(result[1] == [SSRC, SSRC + 1, SSRC + 2] for result in run.results[10:] if result)


def test_random_calls_give_the_same_results() -> None:
    rng = random.Random(9)
    arrival, send = NTP_MS, 0.0

    def calls() -> Iterator[Call]:
        nonlocal arrival, send
        for _ in range(20_000):
            send += rng.choice([0.0, 0.5, 3.0, 33.3, 66.6, 200.0, -20.0])
            arrival += rng.choice([0, 0, 1, 4, 6, 33, 50, 400, 1200, -3])
            yield arrival, abs_send_time(send), rng.randint(1, 20_000), SSRC + rng.randint(0, 1)

    run = run_both(calls())
    assert len({result[0] for result in run.results if result}) > 5


def chosen_estimator_type() -> type[Any]:
    """What `lean_estimator` makes: the C one unless the extension is off (VV_MEDIA_NATIVE=0)."""
    if srtp_session.NATIVE is None:
        return LeanRemoteBitrateEstimator
    return NativeBitrateEstimator


async def test_the_c_estimator_is_the_lean_one_when_the_extension_is_built() -> None:
    if os.environ.get(srtp_session.NATIVE_ENV, "1") == "1":  # not turned off
        assert srtp_session.NATIVE is _rtp_native
        assert chosen_estimator_type() is NativeBitrateEstimator
    assert vars(inbound_stream)["NATIVE"] is srtp_session.NATIVE
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        assert type(lean_estimator(pc.addTransceiver("video").receiver)) is (
            chosen_estimator_type()
        )
    finally:
        await pc.close()


async def test_a_tapped_video_receiver_feeds_thelean_estimator(clip: Clip) -> None:
    room = VisitRoom(120)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await visitor.wait_connected(within=10)
        await kiosk.wait_connected(within=10)
        await kiosk.received_media("video").wait_for_frames(10, within=10)
        server = room.participant("visitor")
        assert server is not None
        [receiver] = [
            t.receiver for t in server.pc.getTransceivers() if t.receiver.track.kind == "video"
        ]
        capped = getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR)
        assert type(capped).__name__ == "_CappedBitrateEstimator"
        assert type(capped._estimator) is chosen_estimator_type()
        assert capped._estimator.ssrcs  # fed: by the lean receive path, from the first frame
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("capped", [True, False])
async def test_the_estimator_is_replaced_once_even_after_aiortcs_path_fed_it(
    monkeypatch: pytest.MonkeyPatch, capped: bool, native: bool
) -> None:
    # the C one where the extension is in use; the Python one where it is not (or is off)
    monkeypatch.setattr(inbound_stream, "NATIVE", _rtp_native if native else None)
    lean_type = NativeBitrateEstimator if native else LeanRemoteBitrateEstimator
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        receiver = pc.addTransceiver("video").receiver
        if capped:
            cap_receiver_remb(receiver, lambda: None)
        estimator = lean_estimator(receiver)
        assert estimator is getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR)
        lean = estimator._estimator if capped else estimator
        assert type(lean) is lean_type
        assert lean_estimator(receiver) is estimator  # again: unchanged
        assert (estimator._estimator if capped else estimator) is lean

        fed = pc.addTransceiver("video").receiver
        theirs = getattr(fed, RECEIVER_BITRATE_ESTIMATOR_ATTR)
        theirs.add(arrival_time_ms=NTP_MS, abs_send_time=1, payload_size=1000, ssrc=SSRC)
        replaced = lean_estimator(fed)  # aiortc's own path fed it first: replaced all the same
        assert type(replaced) is lean_type
        assert getattr(fed, RECEIVER_BITRATE_ESTIMATOR_ATTR) is replaced
        assert theirs is not replaced
        assert lean_estimator(pc.addTransceiver("audio").receiver) is None

        if capped:  # through cap_receiver_remb's wrapper, as FastReceive._estimate calls it
            rembs = [
                estimator.add(
                    abs_send_time=abs_send_time(n * 33.3),
                    arrival_time_ms=NTP_MS + int(n * 33.3) + 20,
                    payload_size=4000,
                    ssrc=SSRC,
                )
                for n in range(200)
            ]
            assert [remb[1] for remb in rembs if remb] == [[SSRC]] * 7  # 500 ms apart
    finally:
        await pc.close()


# --- the C estimator on odd values and bad arguments --------------------------------------

ARGUMENTS = ("arrival_time_ms", "abs_send_time", "payload_size", "ssrc")
PYTHON_ERRORS = (ZeroDivisionError, ValueError, OverflowError, AssertionError)


@dataclass
class Outcomes:
    results: list[Any] = field(default_factory=list)
    errors: list[type[BaseException]] = field(default_factory=list)
    c_only_overflow: bool = False  # an int left int64 in C where Python's went on


def feed_python_and_c(calls: Iterator[tuple[Any, ...]]) -> Outcomes:
    """Feeds the Python and the C estimator the same calls: the same results, or the same
    error type where Python raises (the state is compared after it too: an error leaves the
    same part of the update done). Stops where the C one leaves int64 and Python does not."""
    python, native = LeanRemoteBitrateEstimator(), NativeBitrateEstimator()
    outcomes = Outcomes()
    for n, call in enumerate(calls):
        kwargs = dict(zip(ARGUMENTS, call, strict=True))
        try:
            expected = python.add(**kwargs)
        except PYTHON_ERRORS as error:
            with pytest.raises(type(error)):
                native.add(**kwargs)
            outcomes.errors.append(type(error))
        else:
            try:
                got = native.add(**kwargs)
            except OverflowError as error:
                message = str(error)
                outcomes.c_only_overflow = True
            if outcomes.c_only_overflow:
                assert "64-bit range" in message, f"call {n}: {message}"
                return outcomes
            assert_same_result(expected, got, f"call {n} {kwargs}")
            outcomes.results.append(expected)
        assert_same_state(python, native, f"state after call {n} {kwargs}")
    return outcomes


def odd_calls(sizes: list[int], *, count: int, seed: int) -> Iterator[Call]:
    """30 fps; every 300 frames the queue builds for 100 (5 ms a frame), drains, then holds."""
    rng = random.Random(seed)
    arrival, send = NTP_MS, 0.0
    for n in range(count):
        send += 33.3
        arrival += 33 + {0: 5, 1: -5, 2: 0}[(n // 100) % 3] + rng.randint(0, 2)
        yield arrival, abs_send_time(send), rng.choice(sizes), SSRC


def test_tiny_zero_and_negative_sizes_give_the_same_results_and_errors() -> None:
    """A bitrate of a few hundred bit/s, then 0: the rate control divides by zero in its
    near-max increase (ZeroDivisionError); negative sizes give a negative bitrate (math.sqrt of
    a negative: ValueError). Each error leaves the same state in both."""
    tiny = feed_python_and_c(odd_calls([0] * 30 + [1, 2, 3], count=20_000, seed=10))
    negative = feed_python_and_c(odd_calls([-3000, -20_000, 500], count=4000, seed=11))
    assert tiny.errors.count(ZeroDivisionError) > 100
    assert negative.errors.count(ValueError) > 100
    assert not tiny.c_only_overflow
    assert not negative.c_only_overflow
    assert any(result and result[0] < 0 for result in negative.results)


def test_huge_values_inside_int64_give_the_same_results() -> None:
    """Sizes whose bitrate is beyond 2^53 (Python's exact int division then, not a float one),
    arrival times and abs-send-times far from the usual, a clock that jumps."""
    huge = feed_python_and_c(odd_calls([2**46, 2**47 - 1, 3 * 2**45], count=4000, seed=12))
    assert not huge.c_only_overflow
    assert any(result and result[0] > 2**54 for result in huge.results)
    rng = random.Random(13)

    def jumps() -> Iterator[Call]:
        arrival, send = 2**50, 2**40
        for n in range(3000):
            send += rng.choice([0, 1, 8_000, 2**20, -(2**21)])
            arrival += rng.choice([0, 1, 33, 33, 33, 700, 40_000, -(2**30), 2**31])
            size = rng.choice([2**40, 2**40 - 1, 12_345, -(2**39), 3 * 2**45])
            yield arrival, send, size, SSRC + n % 2

    jumping = feed_python_and_c(jumps())
    assert not jumping.c_only_overflow
    assert len({result[0] for result in jumping.results if result}) > 10


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 3, 5, 6, 33, 34, 500, 501, 999, 1000, 3001, -1, -999, -5000])
            | st.integers(-(2**40), 2**40),
            st.sampled_from([0, 1, 256, 1 << 18, 1 << 23, (1 << 24) - 1, -(1 << 24)])
            | st.integers(-(2**30), 2**30),
            st.sampled_from([0, 1, -1, 1200, 30_000, 2**40]) | st.integers(-(2**44), 2**44),
            st.sampled_from([SSRC, 1, 0, 2**32 - 1, True, "a", (1, 2)]),
        ),
        max_size=300,
    )
)
def test_random_odd_calls_give_the_same_results(steps: list[tuple[int, int, int, Any]]) -> None:
    def calls() -> Iterator[tuple[Any, ...]]:
        arrival, send = NTP_MS, 0
        for arrival_step, send_step, size, ssrc in steps:
            arrival += arrival_step
            send += send_step
            yield arrival, send, size, ssrc

    feed_python_and_c(calls())


def test_ints_outside_int64_raise_overflow_error_and_change_nothing() -> None:
    native = NativeBitrateEstimator()
    native.add(arrival_time_ms=NTP_MS, abs_send_time=1000, payload_size=1000, ssrc=SSRC)
    before = lean_state(native)
    for kwargs in (
        {"arrival_time_ms": 2**63},
        {"arrival_time_ms": -(2**63) - 1},
        {"abs_send_time": 2**55},  # << 8 leaves int64
        {"abs_send_time": -(2**100)},
        {"payload_size": 2**64},
    ):
        call = {"arrival_time_ms": NTP_MS + 40, "abs_send_time": 2000, "payload_size": 10}
        call.update(kwargs)
        with pytest.raises(OverflowError):
            native.add(**call, ssrc=SSRC + 1)
        assert lean_state(native) == before, kwargs
    with pytest.raises(OverflowError):
        native.incoming_bitrate(2**70)


def test_bad_arguments_raise_type_error_as_the_python_estimator_does() -> None:
    python, native = LeanRemoteBitrateEstimator(), NativeBitrateEstimator()
    good = {"arrival_time_ms": NTP_MS, "abs_send_time": 100, "payload_size": 1000, "ssrc": SSRC}
    bad_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {**good, "abs_send_time": 1.5}),
        ((), {**good, "abs_send_time": None}),
        ((), {**good, "abs_send_time": "100"}),
        ((), {**good, "ssrc": [1]}),  # unhashable
        ((), {key: value for key, value in good.items() if key != "ssrc"}),
        ((), {**good, "extra": 1}),
        ((NTP_MS,), good),  # arrival_time_ms twice
        ((NTP_MS, 100, 1000, SSRC, 5), {}),
    ]
    for estimator in (python, native):
        assert estimator.add(**good) is None
    for args, kwargs in bad_calls:
        with pytest.raises(TypeError):
            python.add(*args, **kwargs)
        with pytest.raises(TypeError):
            native.add(*args, **kwargs)
        assert_same_state(python, native, f"after {args} {kwargs}")
    # C only: an int is required where Python would go on with a float or None
    untyped: Any = native
    before = lean_state(native)
    for name in ("arrival_time_ms", "payload_size"):
        for value in (1.5, None, "1"):
            with pytest.raises(TypeError):
                untyped.add(**{**good, name: value})
    with pytest.raises(TypeError):
        untyped.incoming_bitrate(1.5)
    with pytest.raises(TypeError):
        NativeBitrateEstimator(1)  # type: ignore[call-arg]
    assert lean_state(native) == before
    # positional arguments and bools are ints, as in Python
    for n in range(1, 300):
        call = (NTP_MS + n * 33, 100 + n * 9000, 1000 + n % 7, bool(n % 2))
        assert_same_result(python.add(*call), native.add(*call), f"call {n}")
        assert_same_state(python, native, f"call {n}")
    assert python.incoming_bitrate(NTP_MS + 300 * 33) == native.incoming_bitrate(NTP_MS + 300 * 33)
    assert_same_state(python, native, "after incoming_bitrate")


def test_the_c_estimator_keeps_no_references_or_memory_per_call() -> None:
    native = NativeBitrateEstimator()
    arrival_times = [NTP_MS + n * 33 for n in range(100_000)]
    key = 0x7777_7777
    for now in arrival_times[:1000]:
        native.add(
            arrival_time_ms=now, abs_send_time=(now * 262) & 0xFFFFFF, payload_size=5000, ssrc=key
        )
    references = sys.getrefcount(key)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for now in arrival_times[1000:]:
            native.add(
                arrival_time_ms=now,
                abs_send_time=(now * 262) & 0xFFFFFF,
                payload_size=5000,
                ssrc=key,
            )
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sys.getrefcount(key) == references
    assert end - start < 4096, end - start
    assert len(native._rate_ms) <= 31  # one second of frames

    class Ssrc:
        """A key that holds the estimator: a reference cycle through its ssrcs dict."""

        estimator: Any = None

    ssrc = Ssrc()
    ssrc.estimator = native
    native.add(arrival_time_ms=NTP_MS, abs_send_time=0, payload_size=1, ssrc=ssrc)
    gone = weakref.ref(ssrc)
    del ssrc, native
    gc.collect()
    assert gone() is None
