"""CPU time and resident memory of a process from /proc, hardware counts from ``perf stat``
where the machine has them, and small statistics helpers."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime, stime


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (a node's worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, ()))
    return found


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for process {pid}")


def percentile(values: list[float], share: float) -> float:
    """The `share` (0..1) percentile by linear interpolation; NaN without values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def perf_event_works(event: str = "instructions") -> bool:
    """Whether ``perf stat -e EVENT`` counts on this machine (a VM often has no hardware
    counters: perf then says ``<not supported>``)."""
    if shutil.which("perf") is None:
        return False
    try:
        done = subprocess.run(
            ["perf", "stat", "-x", ",", "-e", event, "true"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and _perf_value(done.stderr, event) is not None


def _perf_value(output: str, event: str) -> float | None:
    """The count of ``event`` in ``perf stat -x ,`` output (None: not counted)."""
    for line in output.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2].split(":")[0] == event:
            try:
                return float(fields[0])
            except ValueError:  # "<not supported>", "<not counted>"
                return None
    return None


class PerfCount:
    """``perf stat -e EVENT -p PIDS`` from ``start()`` to ``stop()``: every thread of the
    processes, whatever else runs on the machine (instructions do not depend on the load)."""

    def __init__(self, event: str, pids: list[int]) -> None:
        self.event = event
        self._process = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-e", event, "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> float | None:
        """The count since the start (None: perf failed or could not count)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            _, errors = self._process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return None
        return _perf_value(errors, self.event)
