"""Real `vvserver serve` processes for the node-lifecycle tests, and a world to call in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp

from tests.conftest import fast_passwords, make_settings
from tests.factories import World, add_visit, build_world
from tests.signaling.conftest import join_link
from tests.test_cli import free_port
from vvserver.app import build_services
from vvserver.db.migrate import upgrade
from vvserver.domain.services import Services

SECRET = str(make_settings(Path(".")).secret_key)


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a test server: the tests' secret, loopback ICE, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VV_")}
    env.update(
        VV_SECRET_KEY=SECRET,
        VV_PUBLIC_URL="http://127.0.0.1:8080",
        VV_ICE_HOST_ADDRESSES='["127.0.0.1"]',
        VV_SCHEDULER_INTERVAL_S="2",
        **extra,
    )
    return env


@dataclass
class ServerProcess:
    """``python -m vvserver serve ...`` in the background; its output goes to a file."""

    args: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=server_env)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "vvserver", "serve", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*command, *self.args], stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def healthy(self, within: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc is not None
                assert self.proc.poll() is None, self.output()
                try:
                    async with http.get(f"{self.base}/healthz") as resp:
                        if resp.status == 200:
                            body: dict[str, object] = await resp.json()
                            return body
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, f"not healthy in time:\n{self.output()}"
                await asyncio.sleep(0.2)

    def signal(self, signum: signal.Signals) -> float:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return time.monotonic()

    async def exited(self, within: float) -> int:
        """The exit code, once the process has exited (fails after ``within`` seconds)."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running:\n{self.output()[-3000:]}"
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def get_json(url: str, **kwargs: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, json.loads(await resp.text())


@dataclass
class CallWorld:
    services: Services
    world: World
    data_dir: Path
    database_url: str

    async def visit(self, ends_in: float) -> tuple[int, str]:
        """A visit that started a second ago and ends in ``ends_in`` s; its join-link token."""
        visit_id = await add_visit(
            self.services, self.world, ends_in=ends_in, started=timedelta(seconds=1)
        )
        return visit_id, await join_link(self.services, visit_id)


async def call_world(data_dir: Path, database_url: str | None = None) -> CallWorld:
    url = database_url or f"sqlite+aiosqlite:///{(data_dir / 'vvserver.sqlite3').resolve()}"
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    await upgrade(url)
    services = build_services(make_settings(data_dir, url), passwords=fast_passwords())
    world = await build_world(services)
    return CallWorld(services, world, data_dir, url)
