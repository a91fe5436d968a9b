"""Microseconds per `add()`: aiortc's `RemoteBitrateEstimator`, `LeanRemoteBitrateEstimator` and
its C version (`_rtp_native.NativeBitrateEstimator`, where the extension is built).

    python scripts/bench_estimator.py [--frames N] [--repeat R]

Feeds both the same sequence (default 100,000 video frames at 30 fps, 1-2.5 Mbit/s, with
jitter, a queue building and draining every 20 s, abs-send-time wrapping every 64 s), one
`add()` per frame as the lean receive path does, and prints the best of R runs per call.
Always exits 0 once it has measured.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from aiortc.rate import RemoteBitrateEstimator

from vvserver.media import srtp_session
from vvserver.media.bitrate_estimator import LeanRemoteBitrateEstimator
from vvserver.media.receive_state import LeanRateCounter

NTP_MS = 3_900_000_000_000


def sequence(frames: int, seed: int = 1) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    calls = []
    free_at = 0.0
    for i in range(frames):
        send_ms = i * 1000 / 30
        bitrate = 1_000_000 + 1_500_000 * (0.5 + 0.5 * ((i // 900) % 2))
        size = int(bitrate / 30 / 8 * rng.uniform(0.6, 1.4))
        capacity = 1_800_000 if (send_ms // 10_000) % 2 else 20_000_000
        free_at = max(send_ms, free_at) + size * 8000 / capacity
        arrival = int(NTP_MS + free_at + 20 + rng.uniform(0, 4))
        calls.append((arrival, int(send_ms * (1 << 18) / 1000) & 0xFFFFFF, size, 1234))
    calls.sort(key=lambda call: call[0])  # the receive order
    return calls


def per_call_us(make: Callable[[], Any], calls: list[tuple[int, int, int, int]]) -> float:
    estimator = make()
    add = estimator.add
    start = time.perf_counter()
    for arrival, abs_time, size, ssrc in calls:
        add(arrival_time_ms=arrival, abs_send_time=abs_time, payload_size=size, ssrc=ssrc)
    return (time.perf_counter() - start) / len(calls) * 1e6


def aiortc_with_lean_counter() -> RemoteBitrateEstimator:
    """What the server ran before: aiortc's estimator with a `LeanRateCounter`."""
    estimator = RemoteBitrateEstimator()
    estimator.incoming_bitrate = LeanRateCounter(1000, 8000)  # type: ignore[assignment]
    return estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    calls = sequence(args.frames)
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("aiortc RemoteBitrateEstimator", RemoteBitrateEstimator),
        ("aiortc + LeanRateCounter (before)", aiortc_with_lean_counter),
        ("LeanRemoteBitrateEstimator", LeanRemoteBitrateEstimator),
    ]
    if srtp_session.NATIVE is not None:
        rows.append(("NativeBitrateEstimator (C)", srtp_session.NATIVE.NativeBitrateEstimator))
    best = {name: min(per_call_us(make, calls) for _ in range(args.repeat)) for name, make in rows}
    base = best[rows[0][0]]
    print(f"{len(calls):,} add() calls, best of {args.repeat}")
    print(f"{'estimator':36} {'us/add':>8} {'speed-up':>9}")
    for name, us in best.items():
        print(f"{name:36} {us:8.2f} {base / us:8.1f}x")


if __name__ == "__main__":
    main()
