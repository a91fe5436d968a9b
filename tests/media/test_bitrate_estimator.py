"""`LeanRemoteBitrateEstimator` gives exactly what aiortc's `RemoteBitrateEstimator` gives.

Each scenario feeds the same calls to both (a fixed-seed random generator; a simulated sender
whose rate follows the REMBs, over a bottleneck link with a queue) and compares every return
value and, after every call, the estimators' state bit for bit (floats by `float.hex`). Each
also checks that the REMB decisions change in it, so that it cannot pass vacuously.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCPeerConnection, rate
from aiortc.rate import BandwidthUsage, RemoteBitrateEstimator

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media import aimd_rate_control, bitrate_estimator
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


@dataclass
class Run:
    calls: list[Call] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    hypotheses: set[BandwidthUsage] = field(default_factory=set)


def run_both(
    calls: Iterator[Call], sender: Sender | None = None, *, check_state: bool = True
) -> Run:
    theirs, ours = RemoteBitrateEstimator(), LeanRemoteBitrateEstimator()
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
        if check_state:
            assert state(ours) == state(theirs), f"state after call {n}"
        run.calls.append((arrival, abs_time, size, ssrc))
        run.results.append(expected)
        run.hypotheses.add(theirs.detector.state())
        assert ours.hypothesis is theirs.detector.state()
        if expected is not None and sender is not None:
            sender.remb(expected[0])
    assert state(ours) == state(theirs)
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
        assert isinstance(capped._estimator, LeanRemoteBitrateEstimator)
        assert capped._estimator.ssrcs  # fed: by the lean receive path, from the first frame
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()


@pytest.mark.parametrize("capped", [True, False])
async def test_the_estimator_is_replaced_once_even_after_aiortcs_path_fed_it(capped: bool) -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        receiver = pc.addTransceiver("video").receiver
        if capped:
            cap_receiver_remb(receiver, lambda: None)
        estimator = lean_estimator(receiver)
        assert estimator is getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR)
        lean = estimator._estimator if capped else estimator
        assert isinstance(lean, LeanRemoteBitrateEstimator)
        assert lean_estimator(receiver) is estimator  # again: unchanged
        assert (estimator._estimator if capped else estimator) is lean

        fed = pc.addTransceiver("video").receiver
        theirs = getattr(fed, RECEIVER_BITRATE_ESTIMATOR_ATTR)
        theirs.add(arrival_time_ms=NTP_MS, abs_send_time=1, payload_size=1000, ssrc=SSRC)
        replaced = lean_estimator(fed)  # aiortc's own path fed it first: replaced all the same
        assert isinstance(replaced, LeanRemoteBitrateEstimator)
        assert getattr(fed, RECEIVER_BITRATE_ESTIMATOR_ATTR) is replaced
        assert theirs is not replaced
        assert lean_estimator(pc.addTransceiver("audio").receiver) is None
    finally:
        await pc.close()
