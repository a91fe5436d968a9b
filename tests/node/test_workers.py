"""An operator runs ``vvserver serve --workers 2`` on PostgreSQL and Redis: two processes
answer on one port, and draining one of them leaves the other serving. Asked for more than
one process on SQLite, or without Redis, the server refuses to start and says why."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import _drop_postgres_database, _postgres_database
from tests.node.support import ServerProcess, server_env
from vvserver.db.migrate import upgrade

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    created = await _postgres_database()
    assert created is not None
    name, url = created
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_postgres_database(name)


async def answering_pids(base: str, tries: int = 40) -> dict[int, str]:
    """Process id -> node id of whoever answers ``/healthz``, one new connection each time."""
    seen: dict[int, str] = {}
    for _ in range(tries):
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert body["status"] == "ok"
            seen[int(body["pid"])] = str(body["node"])
    return seen


async def test_two_workers_share_one_port_and_one_drains_without_disturbing_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    server = ServerProcess(
        [
            "--workers",
            "2",
            "--node-name",
            "gate-a",
            "--database-url",
            postgres_url,
            "--redis-url",
            REDIS_URL,
            "--data-dir",
            str(tmp_path / "data"),
            "--drain-timeout",
            "5",
        ],
        tmp_path / "server.log",
    ).start()
    try:
        await server.healthy()
        deadline = time.monotonic() + 60
        while len(pids := await answering_pids(server.base, tries=10)) < 2:
            assert time.monotonic() < deadline, f"only {pids} answered:\n{server.output()}"
        assert sorted(pids.values()) == ["gate-a/0", "gate-a/1"]
        async with aiohttp.ClientSession() as http, http.get(f"{server.base}/metrics") as resp:
            text = await resp.text()
        assert 'vv_calls{node="gate-a",worker="0"} 0.0' in text
        assert 'vv_calls{node="gate-a",worker="1"} 0.0' in text

        # One worker is drained on its own (kill -TERM <worker pid>): the other answers
        # every request meanwhile, and the supervisor starts a new worker in its place.
        drained_pid = next(pid for pid, node in pids.items() if node == "gate-a/0")
        other_pid = next(pid for pid, node in pids.items() if node == "gate-a/1")
        signalled = time.monotonic()
        os.kill(drained_pid, signal.SIGTERM)
        # (A connection the drained worker accepted in the instant before it stopped
        # listening gets its 503 "draining"; from then on only its sibling answers.)
        await asyncio.sleep(0.5)
        during = await answering_pids(server.base, tries=20)
        assert set(during) == {other_pid}
        while True:
            now = await answering_pids(server.base, tries=10)
            if any(pid not in (drained_pid, other_pid) for pid in now):
                break
            assert time.monotonic() - signalled < 60, server.output()[-3000:]
            await asyncio.sleep(0.5)
        assert set(now.values()) <= {"gate-a/0", "gate-a/1"}
        assert other_pid in (await answering_pids(server.base, tries=20))
        print(f"\nworker 0 drained and replaced in {time.monotonic() - signalled:.1f} s")
        server.signal(signal.SIGTERM)
        assert await server.exited(within=30) == 0, server.output()[-3000:]
    finally:
        server.kill()
    assert "all 2 workers stopped cleanly" in server.output()


def refusal(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vvserver", "serve", "--data-dir", str(tmp_path), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=server_env(), check=False
    )


def test_two_workers_on_sqlite_are_refused_at_start(tmp_path: Path) -> None:
    result = refusal(tmp_path, "--workers", "2", "--redis-url", REDIS_URL)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "vvserver: refusing to start: --workers 2 needs PostgreSQL: SQLite serves one process "
        "only. Give --database-url postgresql+asyncpg://USER@HOST/DB (VV_DATABASE_URL), or run "
        "one process without --workers and --redis-url."
    )
    assert not (tmp_path / "vvserver.sqlite3").exists()  # refused before touching anything


def test_two_workers_without_redis_are_refused_at_start(tmp_path: Path) -> None:
    result = refusal(
        tmp_path, "--workers", "2", "--database-url", "postgresql+asyncpg://vv@db.invalid/vv"
    )
    assert result.returncode == 2
    assert "--workers 2 needs Redis: the worker processes share calls" in result.stderr
    assert "--redis-url redis://HOST:6379/0 (VV_REDIS_URL)" in result.stderr


def test_a_cluster_node_on_sqlite_is_refused_at_start(tmp_path: Path) -> None:
    result = refusal(tmp_path, "--redis-url", REDIS_URL, "--node-name", "gate-b")
    assert result.returncode == 2
    assert "a cluster node (--redis-url) needs PostgreSQL" in result.stderr


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def test_workers_whose_supervisor_was_killed_drain_and_exit(
    tmp_path: Path, postgres_url: str
) -> None:
    server = ServerProcess(
        [
            "--workers",
            "2",
            "--database-url",
            postgres_url,
            "--redis-url",
            REDIS_URL,
            "--data-dir",
            str(tmp_path / "data"),
        ],
        tmp_path / "server.log",
    ).start()
    try:
        await server.healthy()
        deadline = time.monotonic() + 60
        while len(pids := await answering_pids(server.base, tries=10)) < 2:
            assert time.monotonic() < deadline, server.output()
        server.signal(signal.SIGKILL)  # the OOM killer, say: no drain for the supervisor
        assert await server.exited(within=10) == -signal.SIGKILL
        deadline = time.monotonic() + 20
        while any(running(pid) for pid in pids):
            assert time.monotonic() < deadline, server.output()[-3000:]
            await asyncio.sleep(0.2)
    finally:
        server.kill()
    assert server.output().count("supervisor gone: draining") == 2
