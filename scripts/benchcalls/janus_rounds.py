"""``--with-janus --rounds R``: vvserver's relay and Janus in alternating rounds.

The 2-vCPU VM's speed drifts by tens of percent within minutes, and a plain ``--with-janus``
run measures all of vvserver's steps before all of Janus's, minutes apart: one such run put
the ratio at 1.23, the next at 0.94. With rounds, each round runs the steps for vvserver and
for Janus back to back (vvserver first in odd rounds, Janus first in even ones), so each
round compares the two on nearly the same machine; the
table gives every round's CPU per call and ratio per N, and the last line the medians over
the rounds (``calls_per_core`` and ``janus_calls_per_core`` are each relay's median calls per
core at its largest N at full rate).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from scripts.benchcalls.janus import run_janus
from scripts.benchcalls.report import held, summarize, table
from scripts.benchcalls.runner import Pinning, StepResult

RunOurs = Callable[[Path], list[StepResult]]


def run_janus_rounds(
    rounds: int,
    steps: tuple[int, ...],
    *,
    pinning: Pinning,
    work_dir: Path,
    window_s: float,
    run_ours: RunOurs,
) -> list[str]:
    """The report's lines; the last is the summary line."""
    per_round: list[tuple[list[StepResult], list[StepResult]]] = []
    notes: list[str] = []
    for round_no in range(1, rounds + 1):
        round_dir = work_dir / f"round-{round_no}"
        round_dir.mkdir(parents=True, exist_ok=True)
        # ABBA: odd rounds run vvserver first, even rounds Janus first, so a drift within a
        # round does not favour one of them in every round
        if round_no % 2:
            ours = run_ours(round_dir)
        janus, note = run_janus(steps, pinning=pinning, work_dir=round_dir, window_s=window_s)
        if not round_no % 2:
            ours = run_ours(round_dir)
        if note:
            notes.append(f"round {round_no}: janus {note}")
        per_round.append((ours, janus))
    return report(per_round, steps, pinning) + notes + [summary_line(per_round, pinning)]


def report(
    per_round: list[tuple[list[StepResult], list[StepResult]]],
    steps: tuple[int, ...],
    pinning: Pinning,
) -> list[str]:
    lines: list[str] = []
    for round_no, (ours, janus) in enumerate(per_round, 1):
        lines += [f"round {round_no}:", "", table(ours + janus, pinning), ""]
    lines += [
        "| N | passthrough % of a core per call, per round | janus, per round | "
        "passthrough / janus calls per core, per round | median |",
        "|---|---|---|---|---|",
    ]
    for n in steps:
        mine = [cpu_per_call(ours, n) for ours, _ in per_round]
        theirs = [cpu_per_call(janus, n) for _, janus in per_round]
        ratios = [t / m for m, t in zip(mine, theirs, strict=True) if m and t]
        median = f"**{statistics.median(ratios):.2f}**" if ratios else "-"
        lines.append(
            f"| {n} | {figures(mine)} | {figures(theirs)} | "
            f"{', '.join(f'{r:.2f}' for r in ratios) or '-'} | {median} |"
        )
    return [*lines, ""]


def summary_line(
    per_round: list[tuple[list[StepResult], list[StepResult]]], pinning: Pinning
) -> str:
    ours = [summarize("passthrough", mine, pinning).calls_per_core for mine, _ in per_round]
    theirs = [summarize("janus", janus, pinning).calls_per_core for _, janus in per_round]
    ratios = [m / t for m, t in zip(ours, theirs, strict=True) if m == m and t == t]
    return (
        f"calls_per_core={median_of(ours):.1f} janus_calls_per_core={median_of(theirs):.1f} "
        f"ratio_median={median_of(ratios):.2f} rounds={len(per_round)}"
    )


def cpu_per_call(results: list[StepResult], n: int) -> float | None:
    """The step's CPU per call, if it held full rate (a relay behind at N is not compared)."""
    for step in results:
        if step.n == n and step.figures and step.error is None:
            return step.cpu_pct_per_call if held(step, results[0]) else None
    return None


def figures(values: list[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v:.2f}" for v in values)


def median_of(values: list[float]) -> float:
    finite = [v for v in values if v == v]  # NaN: a relay with no figures in that round
    return statistics.median(finite) if finite else float("nan")
