"""Concurrent recorded calls per server core, server-added delay and cost per visit, against
aiortc's stock relay path in the same run.

    python scripts/bench_calls.py [--quick] [--with-janus] [--no-docs] [--output-dir DIR]
    python scripts/bench_calls.py --nodes 2 | --workers 2 [--quick] [--redis-single]

The real server (recording on, an officer monitoring every 10th call, counting from the
first) runs in its own process pinned to one core; a load-generator process pinned to the
other cores joins N concurrent 1:1 visits through the public protocol, sends a pre-encoded
VP8 640x480@30 (~500 kbps) + Opus clip without encoding and receives without decoding, on
127.0.0.1 only. For N = 1, 2, 4, ... it measures server CPU (100 = one core), RSS per call,
frames/s received per participant, end-to-end delay (and the same for a direct
peer-to-peer pair in the same process: the difference is the server-added delay),
join-to-first-frame and packet loss. It stops when the server falls behind (fps < 29.5,
delay rising) or the load generator is saturated (then the figure is bounded by the load
generator). The same steps run against ``VV_MEDIA_RELAY=stock`` (decode, MediaRelay,
re-encode, MediaRecorder). ``--with-janus`` adds Janus Gateway (videocall plugin, recording
on) as a C reference, where it can be installed and run.

``--with-janus --rounds R`` alternates the two: R rounds, each the passthrough relay's steps
then Janus's, compared round by round (``scripts/benchcalls/janus_rounds.py``).

``--nodes N`` runs N server processes as one cluster (PostgreSQL, a private Redis; each call's
visitor and kiosk signal through two different nodes) and ``--workers N`` one server with N
worker processes (``VV_WORKERS``); ``--redis-single`` runs one node in cluster mode (the
bridge's own cost against the plain figures). They measure the passthrough relay only and
add the Redis commands per call (``scripts/benchcalls/cluster.py``).

The table goes to stdout (progress on stderr); a full run also writes it with a plot into
docs/performance.md and docs/bench_calls.png (``--no-docs``: don't). The last line is
``calls_per_core=.. baseline_calls_per_core=.. added_delay_p95_ms=.. cost_per_visit_usd=..``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from scripts.benchcalls.cluster import BASELINE, ClusterRun, Layout
from scripts.benchcalls.procstat import perf_event_works
from scripts.benchcalls.report import (
    SECURUS_PER_VISIT_USD,
    Prices,
    RelaySummary,
    cluster_table,
    compare_rounds,
    cost_per_visit,
    held,
    plot,
    splice_docs,
    summarize,
    table,
)
from scripts.benchcalls.runner import Pinning, StepResult, run_step
from scripts.benchcalls.world import seed_world

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
QUICK_STEPS = (1, 2)
QUICK_STOCK_STEPS = (1,)
# Defaults, sourced in docs/performance.md: on-demand compute and internet egress prices.
DEFAULT_VCPU_HOUR_USD = 0.05
DEFAULT_EGRESS_GB_USD = 0.09


def progress(done: int, total: int, text: str) -> None:
    width = 30
    filled = round(width * done / max(1, total))
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r[{bar}] {done}/{total} {text:<60}")
    sys.stderr.flush()
    if done >= total:
        sys.stderr.write("\n")


def run_relay(
    relay: str,
    steps: tuple[int, ...],
    args: argparse.Namespace,
    *,
    world_calls: int,
    pinning: Pinning,
    work_dir: Path,
    results: list[StepResult],
    counter: list[int],
    total: int,
    cluster: ClusterRun | None = None,
) -> None:
    world = seed_world(
        work_dir / f"template-{relay}",
        world_calls,
        None if cluster is None else cluster.template_url,
    )
    first: StepResult | None = None
    planned_end = counter[0] + len(steps)
    for n in steps:
        progress(counter[0], total, f"{relay}: {n} calls")
        step = run_step(
            world,
            relay=relay,
            n=n,
            pinning=pinning,
            work_dir=work_dir,
            warmup_s=args.warmup,
            window_s=args.window,
            cluster=cluster,
            core_quota=args.core_quota,
        )
        results.append(step)
        counter[0] += 1
        first = first or step
        if args.quick or args.all_steps:
            continue  # a fixed set: no stopping rule
        if not held(step, first) or step.load_cpu_share(pinning) > 90:
            break
    counter[0] = planned_end  # steps skipped after the relay stopped count as done


def headline(
    ours: RelaySummary, stock: RelaySummary, janus: RelaySummary | None, prices: Prices
) -> tuple[list[str], str]:
    lines: list[str] = []
    core_s, egress_gb, usd = cost_per_visit(ours, prices)
    for summary in (ours, stock, *([janus] if janus else [])):
        step = summary.step
        if step is None:
            lines.append(f"{summary.relay}: no figures")
            continue
        how = (
            f"largest N at full rate = {step.n}"
            if summary.held
            else f"never at full rate; derived from N={step.n} "
            f"({step.figures.get('fps_min', 0):.1f} fps)"
        )
        bound = "; bounded by the load generator" if summary.load_bound else ""
        lines.append(
            f"{summary.relay}: {step.cpu_pct_per_call:.2f}% of a core per call (measured), "
            f"{summary.calls_per_core:.1f} calls per core (derived; {how}{bound})"
        )
    ratio = ours.calls_per_core / stock.calls_per_core
    lines.append(f"passthrough / stock calls per core: {ratio:.1f}x (target >= 25x)")
    if janus is not None and janus.step is not None:
        lines.append(
            f"passthrough / janus calls per core: {ours.calls_per_core / janus.calls_per_core:.2f}"
        )
    added = ours.step.added_delay_p95_ms if ours.step else math.nan
    lines.append(
        f"cost per 30-minute visit: {core_s:.1f} server core-seconds, {egress_gb:.3f} GB egress "
        f"= ${usd:.4f} at ${prices.vcpu_hour_usd}/vCPU-hour and ${prices.egress_gb_usd}/GB "
        f"(Securus publishes ${SECURUS_PER_VISIT_USD} per visit)"
    )
    final = (
        f"calls_per_core={ours.calls_per_core:.1f} "
        f"baseline_calls_per_core={stock.calls_per_core:.2f} "
        f"added_delay_p95_ms={added:.1f} cost_per_visit_usd={usd:.4f}"
    )
    if janus is not None and janus.step is not None:
        final += f" janus_calls_per_core={janus.calls_per_core:.1f}"
    return lines, final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 2 (stock: 1), short windows")
    parser.add_argument("--with-janus", action="store_true", help="add Janus as a C reference")
    parser.add_argument("--no-docs", action="store_true", help="do not write into docs/")
    parser.add_argument("--output-dir", type=Path, help="also write the table and plot here")
    parser.add_argument("--max-calls", type=int, default=FULL_STEPS[-1])
    parser.add_argument(
        "--all-steps",
        action="store_true",
        help="run every N up to --max-calls even after one falls behind (a busy machine)",
    )
    parser.add_argument("--window", type=float, help="measuring window per step, seconds")
    parser.add_argument("--warmup", type=float, help="seconds between first frames and window")
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list of the server")
    parser.add_argument("--load-cpus", default="1", help="taskset CPU list of the load generator")
    parser.add_argument("--vcpu-hour-usd", type=float, default=DEFAULT_VCPU_HOUR_USD)
    parser.add_argument("--egress-gb-usd", type=float, default=DEFAULT_EGRESS_GB_USD)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--steps", help="exactly these N, e.g. 4 or 4,8 (paired comparisons)")
    parser.add_argument(
        "--skip-stock", action="store_true", help="passthrough only (a comparison run)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="server processes in one cluster")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the server")
    parser.add_argument(
        "--redis-single", action="store_true", help="one node, in cluster mode (Redis bridge on)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="with --with-janus: R rounds of the passthrough relay then Janus, compared round "
        "by round; with --nodes/--workers/--redis-single: R paired rounds per N of the one-process "
        "baseline (same PostgreSQL, no Redis) and the cluster, compared round by round",
    )
    parser.add_argument(
        "--split-baseline",
        action="store_true",
        help="with --nodes N --rounds R: each round also runs N independent processes (a "
        "database each, no Redis, each call wholly on one): the cluster / split ratio is the "
        "bridge's own cost, the machine's sharing of cores by several processes taken out",
    )
    parser.add_argument(
        "--core-quota",
        type=float,
        help="limit each server worker to this share of a CPU (a cgroup quota): emulated "
        "cores for the scaling check on a machine with too few, e.g. 0.45",
    )
    args = parser.parse_args(argv)
    args.window = args.window or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup or (1.0 if args.quick else 3.0)
    steps = QUICK_STEPS if args.quick else tuple(n for n in FULL_STEPS if n <= args.max_calls)
    if args.steps:
        steps = tuple(int(n) for n in args.steps.split(","))
    stock_steps = () if args.skip_stock else QUICK_STOCK_STEPS if args.quick else steps
    pinning = Pinning.choose(args.server_cpus, args.load_cpus)
    prices = Prices(args.vcpu_hour_usd, args.egress_gb_usd)
    work_dir = Path(tempfile.mkdtemp(prefix="vv-bench-calls-"))
    if args.nodes > 1 or args.workers > 1 or args.redis_single:
        return run_cluster(args, steps, pinning, work_dir)
    if args.with_janus and args.rounds:
        return run_with_janus_rounds(args, steps, pinning, work_dir)
    results: list[StepResult] = []
    counter = [0]
    total = len(steps) + len(stock_steps)
    print(
        f"server on CPUs {pinning.server or 'any'}, load generator on {pinning.load or 'any'}; "
        f"work dir {work_dir}",
        file=sys.stderr,
    )
    janus_note: str | None = None
    try:
        for relay, relay_steps in (("passthrough", steps), ("stock", stock_steps)):
            if not relay_steps:
                continue
            run_relay(
                relay,
                relay_steps,
                args,
                world_calls=max(relay_steps),
                pinning=pinning,
                work_dir=work_dir,
                results=results,
                counter=counter,
                total=total,
            )
        progress(total, total, "done")
        if args.with_janus:
            from scripts.benchcalls.janus import run_janus

            janus_steps, janus_note = run_janus(
                steps, pinning=pinning, work_dir=work_dir, window_s=args.window
            )
            results += janus_steps
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    ours = summarize("passthrough", results, pinning)
    stock = summarize("stock", results, pinning)
    janus = summarize("janus", results, pinning) if args.with_janus else None
    rows = table(results, pinning)
    lines, final = headline(ours, stock, janus, prices)
    if janus_note:
        lines.append(f"janus: {janus_note}")
    print(rows)
    print()
    for line in lines:
        print(line)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"Generated by `scripts/bench_calls.py` on {stamp}; server on CPUs "
        f"{pinning.server or 'any'}, load generator on {pinning.load or 'any'}, "
        f"{args.window:g} s windows.\n\n{rows}\n\n" + "\n".join(f"- {line}" for line in lines)
    )
    block += f"\n\n`{final}`\n\n![server CPU and fps vs N](bench_calls.png)\n"
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "bench_calls.md").write_text(block)
        plot(results, args.output_dir / "bench_calls.png")
    if not args.quick and not args.no_docs:
        splice_docs(REPO_ROOT / "docs" / "performance.md", block)
        plot(results, REPO_ROOT / "docs" / "bench_calls.png")
    print(final, flush=True)
    return 0


def run_with_janus_rounds(
    args: argparse.Namespace, steps: tuple[int, ...], pinning: Pinning, work_dir: Path
) -> int:
    """``--with-janus --rounds R``: the passthrough relay then Janus, R rounds
    (``scripts/benchcalls/janus_rounds.py``). Writes no docs."""
    from scripts.benchcalls.janus_rounds import run_janus_rounds

    def run_ours(round_dir: Path) -> list[StepResult]:
        results: list[StepResult] = []
        run_relay(
            "passthrough",
            steps,
            args,
            world_calls=max(steps),
            pinning=pinning,
            work_dir=round_dir,
            results=results,
            counter=[0],
            total=len(steps),
        )
        return results

    print(
        f"{args.rounds} rounds of passthrough then Janus; server on CPUs "
        f"{pinning.server or 'any'}, load generator on {pinning.load or 'any'}; work dir "
        f"{work_dir}",
        file=sys.stderr,
    )
    try:
        lines = run_janus_rounds(
            args.rounds,
            steps,
            pinning=pinning,
            work_dir=work_dir,
            window_s=args.window,
            run_ours=run_ours,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("\n".join(lines), flush=True)
    return 0


def run_cluster(
    args: argparse.Namespace, steps: tuple[int, ...], pinning: Pinning, work_dir: Path
) -> int:
    """The passthrough relay on a cluster; the figures and the Redis commands per call."""
    cluster = ClusterRun(nodes=max(1, args.nodes), workers=max(1, args.workers))
    label = cluster.layout.label
    perf_event = "instructions" if perf_event_works("instructions") else None
    print(
        f"{label}; server on CPUs {pinning.server or 'any'}, load generator on "
        f"{pinning.load or 'any'}; work dir {work_dir}; perf instructions: "
        f"{'counted' if perf_event else 'not available on this machine'}",
        file=sys.stderr,
    )
    results: list[StepResult] = []
    counter = [0]
    try:
        cluster.create_template()
        cluster.start_redis()
        if args.rounds:
            results = run_rounds(args, steps, pinning, work_dir, cluster, perf_event)
        else:
            run_relay(
                "passthrough",
                steps,
                args,
                world_calls=max(steps),
                pinning=pinning,
                work_dir=work_dir,
                results=results,
                counter=counter,
                total=len(steps),
                cluster=cluster,
            )
            progress(len(steps), len(steps), "done")
    finally:
        cluster.close()
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(table(results, pinning))
    print()
    print(cluster_table(results))
    print()
    if args.rounds:
        for line in compare_rounds(results, rounds_layouts(args, cluster)):
            print(line)
        return 0
    summary = summarize("passthrough", results, pinning)
    best = summary.step if summary.held else None
    if best is None:
        print(f"{label}: no step held full rate")
        return 1
    print(
        f"{label}: {best.n} calls at full rate (largest N held), "
        f"{best.cpu_pct_per_call:.2f}% of a core per call at that N"
    )
    print(
        f"cluster_calls_full_rate={best.n} cluster_cpu_pct_per_call={best.cpu_pct_per_call:.2f}",
        flush=True,
    )
    return 0


def rounds_layouts(args: argparse.Namespace, cluster: ClusterRun) -> tuple[Layout, ...]:
    """Each round's layouts, the baseline first and the cluster last."""
    split = (Layout.split_of(cluster.layout),) if args.split_baseline else ()
    return (BASELINE, *split, cluster.layout)


def run_rounds(
    args: argparse.Namespace,
    steps: tuple[int, ...],
    pinning: Pinning,
    work_dir: Path,
    cluster: ClusterRun,
    perf_event: str | None,
) -> list[StepResult]:
    """``--rounds R``: for each N, R rounds of the single-process baseline (the same
    PostgreSQL, no Redis) then the cluster layout, back to back, so that both see the same
    machine load; the comparison is per round."""
    world = seed_world(work_dir / "template", max(steps), cluster.template_url)
    layouts = rounds_layouts(args, cluster)
    total = len(steps) * args.rounds * len(layouts)
    results: list[StepResult] = []
    for n in steps:
        for round_no in range(1, args.rounds + 1):
            for layout in layouts:
                progress(len(results), total, f"N={n} round {round_no}: {layout.label}")
                results.append(
                    run_step(
                        world,
                        relay="passthrough",
                        n=n,
                        pinning=pinning,
                        work_dir=work_dir,
                        warmup_s=args.warmup,
                        window_s=args.window,
                        cluster=cluster,
                        layout=layout,
                        label=f"r{round_no}-{layout.key}",
                        perf_event=perf_event,
                        core_quota=args.core_quota,
                    )
                )
    progress(total, total, "done")
    return results


if __name__ == "__main__":
    sys.exit(main())
