"""`bench_calls.py --with-janus --rounds R` compares vvserver and Janus round by round.

The report is built from the steps' figures alone (no server, no Janus here): each round's
CPU per call and ratio per N, their median, and a last line with each relay's median calls
per core over the rounds.
"""

from __future__ import annotations

from scripts.benchcalls.janus_rounds import report, summary_line
from scripts.benchcalls.runner import Pinning, StepResult

PINNING = Pinning("0", "1")


def step(relay: str, n: int, cpu_pct: float) -> StepResult:
    return StepResult(
        relay,
        n,
        figures={
            "joined": n,
            "fps_min": 30.0,
            "fps_median": 30.0,
            "server_cpu_pct": cpu_pct,
            "relay_delay_p50_ms": 1.0,
            "relay_delay_p95_ms": 2.0,
            "direct_delay_p50_ms": 1.0,
            "direct_delay_p95_ms": 2.0,
            "loadgen_cpu_pct": 20.0,
        },
    )


def test_each_round_is_compared_on_its_own_and_the_medians_close_the_report() -> None:
    per_round = [
        # round 1: vvserver 0.50% per call at N = 16 and 32, Janus 0.60% and 0.55%
        (
            [step("passthrough", 16, 8.0), step("passthrough", 32, 16.0)],
            [step("janus", 16, 9.6), step("janus", 32, 17.6)],
        ),
        # round 2: the machine is slower for both
        (
            [step("passthrough", 16, 12.8), step("passthrough", 32, 25.6)],
            [step("janus", 16, 12.8), step("janus", 32, 22.4)],
        ),
        # round 3: Janus could not run
        ([step("passthrough", 16, 8.0), step("passthrough", 32, 16.0)], []),
    ]
    lines = report(per_round, (16, 32), PINNING)
    assert "| 16 | 0.50, 0.80, 0.50 | 0.60, 0.80, - | 1.20, 1.00 | **1.10** |" in lines
    assert "| 32 | 0.50, 0.80, 0.50 | 0.55, 0.70, - | 1.10, 0.87 | **0.99** |" in lines
    # calls per core at each relay's largest N at full rate (N = 32): 200, 125, 200 for
    # vvserver, 181.8 and 142.9 for Janus; ratios 1.10 and 0.875
    assert summary_line(per_round, PINNING) == (
        "calls_per_core=200.0 janus_calls_per_core=162.3 ratio_median=0.99 rounds=3"
    )
