"""Emulated cores for the scaling check: each server worker limited to a share of one CPU.

"Calls per machine scale with cores" needs more cores than a 2-vCPU VM has once the load
generator takes one of them. ``--core-quota Q`` gives every worker process (every node of
``--nodes``, every worker of ``--workers``) a CPU cgroup of its own with a quota of Q of a
CPU (CFS bandwidth control, a 10 ms period), as if each ran on a core of speed Q. With all
server processes on one CPU and ``workers x Q <= 1``, the workers never wait for each other,
so 1 worker against 2 workers under the same Q shows whether the server's calls grow with
its cores, with the load generator on the other CPU. The quota applies only to the
workers: PostgreSQL and Redis stay outside it (they are other machines in a deployment).

Needs root and a CPU controller: cgroup v1 (``/sys/fs/cgroup/cpu``) or cgroup v2 with
``cpu`` enabled at the root.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from scripts.benchcalls.procstat import descendants

PERIOD_US = 10_000  # short periods: a throttled worker stalls at most ~(1 - Q) x 10 ms
V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")


class CoreQuotaError(RuntimeError):
    pass


def _controller_root() -> tuple[Path, int]:
    """(where to create groups, cgroup version)."""
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return V1_ROOT, 1
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        subtree = V2_ROOT / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")
        return V2_ROOT, 2
    raise CoreQuotaError("--core-quota needs a CPU cgroup controller (cgroup v1 cpu or v2)")


def worker_pids(server_pid: int, supervised: bool) -> list[int]:
    """The processes that serve calls: the workers under a supervisor, or the server itself."""
    if not supervised:
        return [server_pid]
    return [pid for pid in descendants(server_pid) if pid != server_pid]


class CoreQuota:
    """Each worker in its own group with ``share`` of a CPU; `release` removes the groups."""

    def __init__(self, share: float) -> None:
        if not 0.05 <= share <= 1.0:
            raise CoreQuotaError("--core-quota is a share of one CPU, 0.05 to 1")
        if os.geteuid() != 0:
            raise CoreQuotaError("--core-quota needs root (it creates CPU cgroups)")
        self.share = share
        self._root, self._version = _controller_root()
        self._groups: list[Path] = []

    def limit(self, pid: int) -> None:
        group = self._root / f"vvbench-{os.getpid()}-{pid}"
        group.mkdir(exist_ok=True)
        quota = int(self.share * PERIOD_US)
        if self._version == 1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        (group / "cgroup.procs").write_text(str(pid))  # the whole process, every thread
        self._groups.append(group)

    def limit_server(self, server_pid: int, workers: int = 1, wait_s: float = 30.0) -> int:
        """Limits every worker of one server process (`workers` > 1: a supervisor's children,
        waited for); returns how many."""
        expected = workers
        deadline = time.monotonic() + wait_s
        pids = worker_pids(server_pid, workers > 1)
        while len(pids) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = worker_pids(server_pid, workers > 1)
        if len(pids) < expected:
            raise CoreQuotaError(f"{len(pids)} of {expected} workers started")
        for pid in pids:
            self.limit(pid)
        return len(pids)

    def throttled_s(self) -> float:
        """Seconds the workers were held back by their quota so far (all groups)."""
        total_ns = 0
        for group in self._groups:
            with contextlib.suppress(OSError):
                for line in (group / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "throttled_time":  # v1, ns
                        total_ns += int(value)
                    elif key == "throttled_usec":  # v2
                        total_ns += int(value) * 1000
        return total_ns / 1e9

    def release(self) -> None:
        """After the processes have exited; safe to call twice."""
        for group in self._groups:
            with contextlib.suppress(OSError):
                group.rmdir()
        self._groups.clear()
