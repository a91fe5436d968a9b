"""The benchmark's cluster mode: several nodes (``--nodes``) or workers (``--workers``).

Each step gets a PostgreSQL database copied from a seeded template and a Redis of its own
(``redis-server`` on a free port, no persistence), so the Redis command count of a step is
exactly what the nodes sent. Node ``i`` listens on its own port; call ``k``'s visitor signals
through node ``k mod N`` and its kiosk through node ``k+1 mod N``, so with two or more nodes
every call is bridged between two nodes over Redis. A ``Layout`` says how many nodes and
workers a step runs and whether Redis is on: ``--rounds`` alternates the single-process
baseline on the same PostgreSQL (no Redis) with the cluster layout, step by step.
``--split-baseline`` adds a third layout to each round: as many independent processes as the
cluster has nodes, each with a database of its own and no Redis, call ``k`` wholly on process
``k mod N`` (both sides). It has everything the cluster has but the bridge (several processes
sharing the server's cores, each with its share of the calls), so cluster / split is what the
bridge itself costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis import Redis
from redis.exceptions import RedisError

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class Layout:
    """The server processes of one step: nodes x workers, with or without Redis."""

    nodes: int
    workers: int
    redis: bool = True
    # Independent processes (no Redis, a database each): call k wholly on process k mod nodes.
    split: bool = False

    @property
    def label(self) -> str:
        if self.split:
            return f"{self.nodes} independent processes, PostgreSQL, no Redis"
        if not self.redis:
            return "1 process, PostgreSQL, no Redis"
        return f"{self.nodes} node(s) x {self.workers} worker(s), Redis bridge on"

    @property
    def key(self) -> str:
        return f"{self.nodes}x{self.workers}{'s' if self.split else 'r' if self.redis else 'p'}"

    @classmethod
    def split_of(cls, cluster: Layout) -> Layout:
        """The cluster's processes without the bridge: the split baseline."""
        return cls(cluster.nodes, 1, redis=False, split=True)


BASELINE = Layout(1, 1, redis=False)


@dataclass
class ClusterRun:
    """The shared services of a cluster benchmark and each step's copies of them."""

    nodes: int
    workers: int
    template: str = field(default_factory=lambda: f"vvbench_{uuid.uuid4().hex[:10]}")
    databases: list[str] = field(default_factory=list)
    redis_port: int = 0
    _redis: subprocess.Popen[bytes] | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.nodes, self.workers)

    @property
    def template_url(self) -> str:
        return PG_URL.format(name=self.template)

    def create_template(self) -> None:
        asyncio.run(_admin(f'CREATE DATABASE "{self.template}"'))
        self.databases.append(self.template)

    def step_database(self, label: str) -> str:
        name = f"{self.template}_{label}".replace("-", "_")
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.databases.append(name)
        return PG_URL.format(name=name)

    def start_redis(self) -> str:
        if shutil.which("redis-server") is None:
            raise RuntimeError("--nodes/--workers need redis-server (scripts/ensure-services)")
        self.redis_port = _free_port()
        self._redis = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                Redis(port=self.redis_port).ping()
                return self.redis_url
            except (OSError, RedisError):  # not listening yet
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def redis_commands(self) -> int:
        """Commands the private Redis processed so far (every node's, nobody else's)."""
        return redis_commands(self.redis_port)

    def node_env(
        self, index: int, database_url: str, prefix: str, layout: Layout | None = None
    ) -> dict[str, str]:
        layout = layout or self.layout
        if not layout.redis:
            return {"VV_DATABASE_URL": database_url}
        return {
            "VV_DATABASE_URL": database_url,
            "VV_REDIS_URL": self.redis_url,
            "VV_REDIS_KEY_PREFIX": prefix,
            "VV_NODE_NAME": f"bench{index}",
            "VV_WORKERS": str(layout.workers),
            "VV_PUBLIC_ADDRESS": "127.0.0.1",
        }

    def close(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            self._redis.wait(10)
        for name in reversed(self.databases):
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.databases.clear()


def redis_command_counts(port: int) -> dict[str, int]:
    """Calls per command name so far (``INFO commandstats``; a Lua script counts as one; a
    pipeline or MULTI counts each command in it), the benchmark's own ``INFO`` left out."""
    stats = Redis(port=port).info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    counts.pop("info", None)
    return counts


def redis_commands(port: int) -> int:
    """Commands the nodes sent to the Redis on ``port`` so far."""
    return sum(redis_command_counts(port).values())


def copy_data_dir(template_dir: Path, target: Path) -> Path:
    """A node's data directory: the template's files without the SQLite database."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template_dir, target, ignore=shutil.ignore_patterns("*.sqlite3*"))
    return target
