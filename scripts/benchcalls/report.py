"""Summaries of a call benchmark: the table, the headline figures, the plot, the docs block."""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from scripts.benchcalls.cluster import Layout
from scripts.benchcalls.runner import Pinning, StepResult

VISIT_SECONDS = 30 * 60
SECURUS_PER_VISIT_USD = 2.72
DOCS_BEGIN = "<!-- bench_calls:begin -->"
DOCS_END = "<!-- bench_calls:end -->"
LOAD_BOUND_SHARE = 90.0
DELAY_RISE_FACTOR = 2.0
DELAY_RISE_MS = 20.0


@dataclass(frozen=True, slots=True)
class Prices:
    vcpu_hour_usd: float
    egress_gb_usd: float


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def delay_rising(step: StepResult, first: StepResult | None) -> bool:
    """The server-added delay p95 grew well past the one call's: the server falls behind."""
    if first is None or first is step or math.isnan(step.added_delay_p95_ms):
        return False
    base = max(0.0, first.added_delay_p95_ms)
    return step.added_delay_p95_ms > max(DELAY_RISE_FACTOR * base, base + DELAY_RISE_MS)


def held(step: StepResult, first: StepResult | None) -> bool:
    return step.fps_ok and not delay_rising(step, first)


def step_note(step: StepResult, first: StepResult | None, pinning: Pinning) -> str:
    if step.error is not None:
        return f"error: {step.error}"
    notes = []
    failures = step.figures.get("failures") or []
    if failures:
        notes.append(f"{len(failures)} join failures")
    if not step.fps_ok:
        notes.append("below full rate")
    if delay_rising(step, first):
        notes.append("delay rising")
    if step.load_cpu_share(pinning) > LOAD_BOUND_SHARE:
        notes.append("load generator saturated")
    return ", ".join(notes) or "held"


HEADER = (
    "| relay | N | server CPU % | CPU %/call | RSS MiB/call | fps min / median "
    "| delay p50 / p95 ms | added p50 / p95 ms | join→1st frame p50 / max s | loss % "
    "| load-gen CPU % | result |"
)


def table(steps: list[StepResult], pinning: Pinning) -> str:
    rows = [HEADER, "|" + "---|" * 12]
    firsts: dict[str, StepResult] = {}
    for step in steps:
        first = firsts.setdefault(step.relay, step)
        f = step.figures
        rows.append(
            "| "
            + " | ".join(
                [
                    step.relay,
                    str(step.n),
                    _fmt(step.cpu_pct),
                    _fmt(step.cpu_pct_per_call, 2),
                    _fmt(step.rss_mib_per_call, 2) if f else "-",
                    f"{_fmt(f.get('fps_min'))} / {_fmt(f.get('fps_median'))}",
                    f"{_fmt(f.get('relay_delay_p50_ms'))} / {_fmt(f.get('relay_delay_p95_ms'))}",
                    (
                        f"{_fmt(step.added_delay_p50_ms)} / {_fmt(step.added_delay_p95_ms)}"
                        if f
                        else "-"
                    ),
                    f"{_fmt(f.get('join_first_frame_p50_s'), 2)} / "
                    f"{_fmt(f.get('join_first_frame_max_s'), 2)}",
                    _fmt(f.get("loss_pct"), 2),
                    _fmt(f.get("loadgen_cpu_pct")),
                    step_note(step, first, pinning),
                ]
            )
            + " |"
        )
    return "\n".join(rows)


CLUSTER_HEADER = (
    "| processes | N | server CPU % | idle CPU % | CPU %/call | above idle %/call "
    "| fps min | Redis cmd/s idle | Redis cmd per call: set-up | per call-second "
    "| instructions per call-second | result |"
)


def cluster_table(steps: list[StepResult]) -> str:
    """A cluster benchmark's steps: CPU per call with and without the processes' idle work,
    and the Redis commands (set-up per call, per call-second in the window, idle per second)."""
    rows = [CLUSTER_HEADER, "|" + "---|" * 12]
    for step in steps:
        f = step.figures
        perf = f.get("perf_per_call_s")
        rows.append(
            "| "
            + " | ".join(
                [
                    step.layout.label if step.layout else "-",
                    str(step.n),
                    _fmt(step.cpu_pct),
                    _fmt(step.idle_cpu_pct, 2),
                    _fmt(step.cpu_pct_per_call, 2),
                    _fmt(step.cpu_pct_per_call_above_idle, 2),
                    _fmt(f.get("fps_min")),
                    _fmt(f.get("redis_idle_per_s")),
                    _fmt(f.get("redis_setup_per_call")),
                    _fmt(f.get("redis_per_call_s"), 2),
                    f"{perf / 1e6:.0f} M" if isinstance(perf, float) else "-",
                    "held" if held(step, None) else f"below full rate ({step.error or 'fps'})",
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def _ratio_line(n: int, what: str, pairs: list[tuple[StepResult, StepResult]]) -> str:
    raw = [o.cpu_pct_per_call / b.cpu_pct_per_call for b, o in pairs]
    above = [
        o.cpu_pct_per_call_above_idle / b.cpu_pct_per_call_above_idle
        for b, o in pairs
        if b.cpu_pct_per_call_above_idle > 0
    ]
    return (
        f"N={n}: {what}, CPU per call, {len(pairs)} paired rounds: "
        f"median {statistics.median(raw):.2f} (rounds {', '.join(f'{r:.2f}' for r in raw)}); "
        f"above idle: median {statistics.median(above):.2f} "
        f"(rounds {', '.join(f'{r:.2f}' for r in above)})"
    )


def compare_rounds(steps: list[StepResult], layouts: tuple[Layout, ...]) -> list[str]:
    """Round by round (each round: one step per layout, in order, the baseline first and the
    cluster last): the cluster's CPU per call over each other layout's in the same round."""
    lines: list[str] = []
    cluster = layouts[-1]
    for n in sorted({s.n for s in steps}):
        mine = [s for s in steps if s.n == n and s.layout is not None]
        rounds = [mine[i : i + len(layouts)] for i in range(0, len(mine), len(layouts))]
        for base in layouts[:-1]:
            pairs = [
                (by[base], by[cluster])
                for by in ({s.layout: s for s in r} for r in rounds)
                if base in by and cluster in by
                if all(s.figures and held(s, None) for s in (by[base], by[cluster]))
            ]
            what = f"{cluster.label} / {base.label}"
            if not pairs:
                lines.append(f"N={n}: {what}: no round where both held full rate")
                continue
            lines.append(_ratio_line(n, what, pairs))
        done = [r[-1] for r in rounds if r and r[-1].layout == cluster and r[-1].figures]
        per_s = [
            float(o.figures["redis_per_call_s"]) for o in done if "redis_per_call_s" in o.figures
        ]
        set_up = [
            float(o.figures["redis_setup_per_call"])
            for o in done
            if "redis_setup_per_call" in o.figures
        ]
        if per_s and set_up:
            lines.append(
                f"N={n}: Redis commands per call: {statistics.median(set_up):.0f} at set-up, "
                f"{statistics.median(per_s):.2f} per call-second (medians over the rounds)"
            )
    return lines


@dataclass(frozen=True, slots=True)
class RelaySummary:
    """Calls per core of one relay: from its largest step at full rate, else from N=1."""

    relay: str
    step: StepResult | None
    held: bool  # False: no step held full rate; derived from the first step's CPU
    load_bound: bool  # the run stopped because the load generator, not the server, was full

    @property
    def calls_per_core(self) -> float:
        if self.step is None or not self.step.cpu_pct_per_call > 0:
            return math.nan
        return 100 / self.step.cpu_pct_per_call


def summarize(relay: str, steps: list[StepResult], pinning: Pinning) -> RelaySummary:
    mine = [s for s in steps if s.relay == relay and s.figures]
    if not mine:
        return RelaySummary(relay, None, False, False)
    first = mine[0]
    good = [s for s in mine if held(s, first)]
    if not good:
        return RelaySummary(relay, first, False, False)
    best = good[-1]
    load_bound = any(s.load_cpu_share(pinning) > LOAD_BOUND_SHARE for s in mine if s.n >= best.n)
    return RelaySummary(relay, best, True, load_bound)


def cost_per_visit(summary: RelaySummary, prices: Prices) -> tuple[float, float, float]:
    """(core-seconds, egress GB, USD) of one 30-minute visit, 1 in 10 monitored."""
    step = summary.step
    if step is None:
        return math.nan, math.nan, math.nan
    core_seconds = step.cpu_pct_per_call / 100 * VISIT_SECONDS
    per_call = float(step.figures["egress_bps_per_call"])
    per_monitor = float(step.figures.get("egress_bps_per_monitor") or 0.0)
    egress_gb = (per_call + 0.1 * per_monitor) / 8 * VISIT_SECONDS / 1e9
    usd = core_seconds / 3600 * prices.vcpu_hour_usd + egress_gb * prices.egress_gb_usd
    return core_seconds, egress_gb, usd


def plot(steps: list[StepResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cpu_axes, fps_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for relay in dict.fromkeys(s.relay for s in steps):
        mine = [s for s in steps if s.relay == relay and s.figures]
        ns = [s.n for s in mine]
        cpu_axes.plot(ns, [s.cpu_pct for s in mine], marker="o", label=relay)
        fps_axes.plot(ns, [float(s.figures["fps_min"]) for s in mine], marker="o", label=relay)
    cpu_axes.set(xscale="log", xlabel="concurrent recorded calls (N)", ylabel="server CPU %")
    cpu_axes.axhline(100, color="grey", linestyle=":", linewidth=1)
    fps_axes.set(xscale="log", xlabel="concurrent recorded calls (N)", ylabel="min fps received")
    fps_axes.axhline(29.5, color="grey", linestyle=":", linewidth=1)
    for axes in (cpu_axes, fps_axes):
        axes.set_xticks(sorted({s.n for s in steps}))
        axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle("vvserver: one server core, 640x480@30 VP8 + Opus per side, recorded")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def splice_docs(performance_md: Path, block: str) -> None:
    """Replace the generated block in docs/performance.md (or append it)."""
    text = performance_md.read_text() if performance_md.exists() else "# Performance\n"
    generated = f"{DOCS_BEGIN}\n{block.strip()}\n{DOCS_END}"
    pattern = re.compile(re.escape(DOCS_BEGIN) + ".*?" + re.escape(DOCS_END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: generated, text)
    else:
        text = text.rstrip() + "\n\n## Calls per core (`scripts/bench_calls.py`)\n\n"
        text += generated + "\n"
    performance_md.write_text(text)
