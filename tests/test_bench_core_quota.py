"""The call benchmark's emulated cores: a worker is held to its share of a CPU, then let go."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripts.benchcalls.cpu_quota import CoreQuota, CoreQuotaError, worker_pids

BUSY = "import time\nwhile True: pass\n"


def test_a_share_outside_one_cpu_is_refused() -> None:
    for share in (0.0, 1.5):
        with pytest.raises(CoreQuotaError):
            CoreQuota(share)


def test_a_busy_worker_is_held_to_its_share_and_its_group_goes_with_release() -> None:
    try:
        quota = CoreQuota(0.2)
    except CoreQuotaError as exc:
        pytest.skip(f"no CPU cgroups here: {exc}")
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        assert worker_pids(busy.pid, supervised=False) == [busy.pid]
        assert quota.limit_server(busy.pid) == 1
        group = next(g for g in quota._groups)
        assert str(busy.pid) in (group / "cgroup.procs").read_text().split()
        start = _cpu_seconds(busy.pid)
        time.sleep(1.0)
        used = _cpu_seconds(busy.pid) - start
        assert used < 0.45  # 20% of a CPU (+ tick rounding), not the whole CPU it would take
        assert quota.throttled_s() > 0
    finally:
        busy.kill()
        busy.wait()
    quota.release()
    assert not group.exists()
    quota.release()  # twice is fine


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
