"""Runs one benchmark step: a fresh server pinned to its core, a load generator on the others.

Each step copies the template data directory, starts ``python -m vvserver serve`` with the
relay under test (``VV_MEDIA_RELAY``), measures its idle CPU and RSS, runs the load-generator
process for N calls and stops the server (SIGINT: rooms close, recordings are finished).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.benchcalls.cluster import ClusterRun, Layout, copy_data_dir, redis_commands
from scripts.benchcalls.cpu_quota import CoreQuota
from scripts.benchcalls.procstat import cpu_seconds, descendants, rss_kib
from scripts.benchcalls.world import BenchWorld

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 30.0
IDLE_SAMPLE_S = 1.5
FULL_RATE_FPS = 29.5


@dataclass(frozen=True, slots=True)
class Pinning:
    """CPU lists for `taskset -c`; None runs unpinned (no taskset, or too few cores)."""

    server: str | None
    load: str | None

    @classmethod
    def choose(cls, server: str, load: str) -> Pinning:
        if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
            return cls(None, None)
        return cls(server, load)

    @staticmethod
    def wrap(cpus: str | None, command: list[str]) -> list[str]:
        return command if cpus is None else ["taskset", "-c", cpus, *command]

    @property
    def load_core_count(self) -> int:
        if self.load is None:
            return os.cpu_count() or 1
        count = 0
        for part in self.load.split(","):
            low, _, high = part.partition("-")
            count += int(high or low) - int(low) + 1
        return count


@dataclass
class StepResult:
    relay: str
    n: int
    figures: dict[str, Any] = field(default_factory=dict)
    idle_cpu_pct: float = 0.0
    idle_rss_kib: int = 0
    error: str | None = None
    layout: Layout | None = None  # a cluster benchmark's step: its processes

    @property
    def fps_ok(self) -> bool:
        return (
            self.error is None
            and self.figures.get("joined") == self.n
            and float(self.figures.get("fps_min", 0.0)) >= FULL_RATE_FPS
        )

    @property
    def cpu_pct(self) -> float:
        return float(self.figures.get("server_cpu_pct", math.nan))

    @property
    def cpu_pct_per_call(self) -> float:
        return self.cpu_pct / self.n

    @property
    def cpu_pct_per_call_above_idle(self) -> float:
        """What the calls add, per call: the processes' idle work (the scheduler, a cluster
        node's heartbeats) taken out, as measured before the calls joined."""
        return (self.cpu_pct - self.idle_cpu_pct) / self.n

    @property
    def rss_mib_per_call(self) -> float:
        rss = int(self.figures.get("server_rss_kib", 0))
        return max(0, rss - self.idle_rss_kib) / 1024 / self.n

    @property
    def added_delay_p50_ms(self) -> float:
        return float(self.figures["relay_delay_p50_ms"]) - float(
            self.figures["direct_delay_p50_ms"]
        )

    @property
    def added_delay_p95_ms(self) -> float:
        return float(self.figures["relay_delay_p95_ms"]) - float(
            self.figures["direct_delay_p95_ms"]
        )

    def load_cpu_share(self, pinning: Pinning) -> float:
        """The load generator's CPU as a share of its cores (100 = all of them busy)."""
        return float(self.figures.get("loadgen_cpu_pct", 0.0)) / pinning.load_core_count


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ServerProcess:
    """`vvserver serve` in a child process, pinned; its log goes to a file."""

    def __init__(
        self,
        data_dir: Path,
        relay: str,
        pinning: Pinning,
        log_path: Path,
        *,
        extra_env: dict[str, str] | None = None,
        cpus: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "VV_DATA_DIR": str(data_dir),
            "VV_PORT": str(self.port),
            "VV_HOST": "127.0.0.1",
            "VV_PUBLIC_URL": self.url,
            "VV_ICE_HOST_ADDRESSES": '["127.0.0.1"]',
            "VV_MEDIA_RELAY": relay,
            # a step stops after its calls: nothing to wait for (rooms stay open to the slot's end)
            "VV_DRAIN_TIMEOUT_S": "2",
            **(extra_env or {}),
        }
        command = [sys.executable, "-m", "vvserver", "serve"]
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            Pinning.wrap(cpus or pinning.server, command),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            # SIGINT stops it cleanly, even when this script runs where SIGINT is ignored.
            preexec_fn=_default_sigint,
        )
        self.pid = self.process.pid  # taskset execs the server: same pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start listening in time")

    def stop(self) -> None:
        """SIGINT (a drain), then SIGKILL after ``SERVER_STOP_TIMEOUT_S``; worker processes
        still there once the supervisor is gone are killed too, so that none runs on into
        the next step."""
        running = self.process.poll() is None
        children = (
            [p for p in descendants(self.process.pid) if p != self.process.pid] if running else []
        )
        if running:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in children:
            with contextlib.suppress(OSError):  # gone meanwhile; never another program's pid
                if b"vvserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        self._log.close()


def _servers(
    world: BenchWorld,
    relay: str,
    n: int,
    pinning: Pinning,
    step_dir: Path,
    cluster: ClusterRun | None,
    layout: Layout,
) -> list[ServerProcess]:
    if cluster is None:
        data_dir = world.copy_data_dir(step_dir / "data")
        return [ServerProcess(data_dir, relay, pinning, step_dir / "server.log")]
    cpus = (pinning.server or "").split(",") if pinning.server else []
    if layout.split:
        return [
            ServerProcess(
                copy_data_dir(world.template_dir, step_dir / f"data{index}"),
                relay,
                pinning,
                step_dir / f"server{index}.log",
                extra_env={
                    # short: PostgreSQL cuts names at 63 bytes (step_dir names the relay and N)
                    "VV_DATABASE_URL": cluster.step_database(f"{step_dir.name}_{index}")
                },
                cpus=cpus[index % len(cpus)] if cpus else None,
            )
            for index in range(layout.nodes)
        ]
    database_url = cluster.step_database(f"{relay}_{n}_{layout.key}_{step_dir.name}")
    prefix = f"bench-{relay}-{n}-{step_dir.name}"
    servers = []
    for index in range(layout.nodes):
        servers.append(
            ServerProcess(
                copy_data_dir(world.template_dir, step_dir / f"data{index}"),
                relay,
                pinning,
                step_dir / f"server{index}.log",
                extra_env=cluster.node_env(index, database_url, prefix, layout),
                # Several nodes: one server CPU each; one node with workers: all of them.
                cpus=cpus[index % len(cpus)] if cpus and layout.nodes > 1 else None,
            )
        )
        if index == 0:
            servers[0].wait_ready()  # the first node migrates; the others start after it
    return servers


def _all_cpu(servers: list[ServerProcess]) -> float:
    return sum(cpu_seconds(pid) for s in servers for pid in descendants(s.pid))


def _redis_figures(
    result: StepResult, before: int, idle_per_s: float, joins_started: float
) -> None:
    """Redis round trips of the step: set-up per call (joins, first frames, warm-up) and per
    call-second in the window, each above the nodes' own idle rate (heartbeats, scans)."""
    f = result.figures
    at_open, in_window = f.get("redis_at_window_open"), f.get("redis_window_commands")
    if at_open is None or in_window is None:
        return
    window_s = float(f["window_s"])
    f["redis_idle_per_s"] = idle_per_s
    set_up_s = float(f["redis_window_opened_at"]) - joins_started
    f["redis_setup_per_call"] = (at_open - before - idle_per_s * set_up_s) / result.n
    f["redis_per_call_s"] = (in_window / window_s - idle_per_s) / result.n


def run_step(
    world: BenchWorld,
    *,
    relay: str,
    n: int,
    pinning: Pinning,
    work_dir: Path,
    warmup_s: float,
    window_s: float,
    cluster: ClusterRun | None = None,
    layout: Layout | None = None,
    label: str = "",
    perf_event: str | None = None,
    core_quota: float | None = None,
) -> StepResult:
    """One step; ``layout`` (a cluster benchmark) defaults to the cluster's own, ``label``
    tells apart steps of the same N (rounds), ``perf_event`` (e.g. ``instructions``) is also
    counted over the window where perf can, ``core_quota`` limits each worker process to that
    share of a CPU (`cpu_quota.CoreQuota`)."""
    layout = layout or (cluster.layout if cluster is not None else None)
    step_dir = work_dir / (f"{relay}-{n}" + (f"-{label}" if label else ""))
    step_dir.mkdir(parents=True, exist_ok=True)
    result = StepResult(relay, n, layout=layout)
    servers: list[ServerProcess] = []
    redis_port = cluster.redis_port if cluster is not None and layout and layout.redis else 0
    quota = CoreQuota(core_quota) if core_quota else None
    try:
        servers = _servers(
            world, relay, n, pinning, step_dir, cluster, layout or Layout(1, 1, redis=False)
        )
        for server in servers:
            server.wait_ready()
        server = servers[0]
        time.sleep(0.5 if cluster is None else 3.0)  # a cluster: the nodes find each other
        if quota is not None:
            each = (layout.workers if layout else 1) if cluster is not None else 1
            for s in servers:
                quota.limit_server(s.pid, workers=each)
        idle_window = max(IDLE_SAMPLE_S, 4.0 if redis_port else 0.0)
        cpu0, redis0 = _all_cpu(servers), redis_commands(redis_port) if redis_port else 0
        time.sleep(idle_window)
        result.idle_cpu_pct = 100 * (_all_cpu(servers) - cpu0) / idle_window
        result.idle_rss_kib = sum(rss_kib(pid) for s in servers for pid in descendants(s.pid))
        redis_before = redis_commands(redis_port) if redis_port else 0
        idle_redis_per_s = (redis_before - redis0) / idle_window
        joins_started = time.monotonic()
        plan_path = step_dir / "plan.json"
        plan_path.write_text(
            json.dumps(
                {
                    "server_url": server.url,
                    "server_pid": server.pid,
                    "server_urls": [s.url for s in servers],
                    "server_pids": [s.pid for s in servers],
                    "split": bool(layout and layout.split),
                    "calls": [c.to_json() for c in world.calls[:n]],
                    "officer_email": world.officer_email,
                    "officer_password": world.officer_password,
                    "officer_totp_secret": world.officer_totp_secret,
                    "warmup_s": warmup_s,
                    "window_s": window_s,
                    "redis_port": redis_port,
                    "perf_event": perf_event or "",
                }
            )
        )
        command = [sys.executable, "-m", "scripts.benchcalls.loadgen", str(plan_path)]
        with (step_dir / "loadgen.log").open("w") as log:
            done = subprocess.run(
                Pinning.wrap(pinning.load, command),
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=warmup_s + window_s + 240,
                check=False,
            )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            result.error = f"load generator exited with {done.returncode} (see {log.name})"
        else:
            result.figures = json.loads(lines[-1])
            if redis_port:
                _redis_figures(result, redis_before, idle_redis_per_s, joins_started)
            if quota is not None:
                result.figures["core_quota"] = quota.share
                result.figures["throttled_s"] = quota.throttled_s()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        for server in servers:
            server.stop()
        if quota is not None:
            quota.release()
    return result
