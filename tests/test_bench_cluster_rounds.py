"""`bench_calls.py --nodes 2 --rounds R --split-baseline` compares the cluster round by round
with one process and with as many independent processes as it has nodes.

The comparison is built from the steps' figures alone (no server here): each round holds one
step per layout, the baseline first and the cluster last; a round where a step fell below full
rate is left out of that ratio.
"""

from __future__ import annotations

from scripts.benchcalls.cluster import BASELINE, Layout
from scripts.benchcalls.report import compare_rounds
from scripts.benchcalls.runner import StepResult

CLUSTER = Layout(2, 1)
SPLIT = Layout.split_of(CLUSTER)


def step(layout: Layout, n: int, cpu_pct: float, *, fps: float = 30.0) -> StepResult:
    return StepResult(
        "passthrough",
        n,
        figures={
            "joined": n,
            "fps_min": fps,
            "server_cpu_pct": cpu_pct,
            "redis_per_call_s": 2.5,
            "redis_setup_per_call": 60.0,
        },
        layout=layout,
    )


def test_the_split_baseline_has_the_clusters_processes_and_no_redis() -> None:
    assert Layout(2, 1, redis=False, split=True) == SPLIT
    assert len({BASELINE.key, SPLIT.key, CLUSTER.key}) == 3
    assert SPLIT.label == "2 independent processes, PostgreSQL, no Redis"


def test_each_round_compares_the_cluster_with_one_process_and_with_the_split_processes() -> None:
    steps = [
        step(BASELINE, 16, 16.0), step(SPLIT, 16, 24.0), step(CLUSTER, 16, 26.4),
        step(BASELINE, 16, 20.0), step(SPLIT, 16, 30.0), step(CLUSTER, 16, 30.0),
        step(BASELINE, 16, 18.0), step(SPLIT, 16, 20.0, fps=20.0), step(CLUSTER, 16, 27.0),
    ]  # fmt: skip
    lines = compare_rounds(steps, (BASELINE, SPLIT, CLUSTER))
    one, split, redis = lines
    assert one.startswith(f"N=16: {CLUSTER.label} / {BASELINE.label}, CPU per call, 3 paired")
    assert "median 1.50 (rounds 1.65, 1.50, 1.50)" in one
    # the third round's split step fell below full rate: two rounds compare
    assert split.startswith(f"N=16: {CLUSTER.label} / {SPLIT.label}, CPU per call, 2 paired")
    assert "median 1.05 (rounds 1.10, 1.00)" in split
    assert redis == "N=16: Redis commands per call: 60 at set-up, 2.50 per call-second " + (
        "(medians over the rounds)"
    )


def test_without_the_split_baseline_rounds_are_pairs_as_before() -> None:
    steps = [step(BASELINE, 8, 8.0), step(CLUSTER, 8, 8.8)]
    [ratio, _] = compare_rounds(steps, (BASELINE, CLUSTER))
    assert "1 paired rounds: median 1.10" in ratio
