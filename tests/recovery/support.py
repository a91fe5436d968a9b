"""What the recovery tests share: a real server process, a visitor behind a network namespace
whose link the test cuts, and the media frames each side receives over time.

The cut drops every IPv4 packet at the ingress of both ends of the visitor's veth pair
(nftables ``netdev`` tables), so neither side gets an error: TCP and UDP just go silent, as on a
dead Wi-Fi or a cable pulled somewhere on the path. ARP still passes, so the link comes back the
moment the rules go. Needs root, ``ip`` (iproute2) and ``nft`` (nftables); without them the
tests skip (and fail on CI, where ``scripts/ensure-services`` installs both).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import IN_CI, fast_passwords, make_settings
from tests.factories import add_visit, build_world
from tests.signaling.conftest import join_link
from vvserver.app import build_services
from vvserver.client.headless import HeadlessParticipant
from vvserver.db.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 60.0
SAMPLE_EVERY_S = 0.05


@dataclass(frozen=True)
class PreparedVisit:
    data_dir: Path
    visit_id: int
    join_token: str
    kiosk_token: str
    secret_key: str


async def prepare_visit(data_dir: Path, *, seconds: float) -> PreparedVisit:
    """A migrated SQLite data dir with the test world and a visit in progress for `seconds`."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{data_dir / 'vvserver.sqlite3'}"
    await upgrade(url)
    settings = make_settings(data_dir, url)
    services = build_services(settings, passwords=fast_passwords())
    try:
        world = await build_world(services)
        visit_id = await add_visit(services, world, ends_in=seconds, started=timedelta(seconds=1))
        token = await join_link(services, visit_id)
    finally:
        await services.db.close()
    assert settings.secret_key is not None
    return PreparedVisit(data_dir, visit_id, token, world.kiosk_tokens["a1-1"], settings.secret_key)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """``python -m vvserver serve`` on `host`:`port` with the prepared data dir; log to a file."""

    def __init__(self, prepared: PreparedVisit, host: str, port: int, ice_host: str) -> None:
        self.prepared = prepared
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.env = {
            **os.environ,
            "VV_DATA_DIR": str(prepared.data_dir),
            "VV_HOST": host,
            "VV_PORT": str(port),
            "VV_SECRET_KEY": prepared.secret_key,
            "VV_PUBLIC_URL": "http://127.0.0.1:8080",  # as the join link was issued
            "VV_ICE_HOST_ADDRESSES": json.dumps([ice_host]),
        }
        self.log_path = prepared.data_dir / "server.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> float:
        """Start it and wait until ``/healthz`` answers 200; the monotonic time it did."""
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vvserver",
                "serve",
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return await self.wait_healthy()

    async def wait_healthy(self) -> float:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                assert self.process.returncode is None, self.log_path.read_text()[-3000:]
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(
                        f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)
                    ) as response:
                        if response.status == 200:
                            return time.monotonic()
                await asyncio.sleep(0.05)
        raise AssertionError("the server did not become healthy:\n" + self.log()[-3000:])

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, the sockets die with the process."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=20)


def require_network_namespaces() -> None:
    """Skip (fail on CI) where namespaces and nftables are not available."""
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "network namespaces need root"
    elif missing:
        reason = f"missing {', '.join(missing)} (scripts/ensure-services installs them)"
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


_CUT_RULES = """table netdev vvcut {{
 chain ingress {{
  type filter hook ingress device "{device}" priority 0;
  meta protocol ip drop
 }}
}}
"""


class VisitorNetwork:
    """A network namespace for the visitor, joined to the host by a veth pair (a /30)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}{random.randrange(100, 1000)}"
        self.namespace = f"vvrec{tag}"
        self.host_device, self.ns_device = f"vvh{tag}", f"vvn{tag}"
        block = random.randrange(0, 64 * 256)  # a /30 in 10.212.0.0/16
        third, fourth = divmod(block * 4, 256)
        self.host_ip = f"10.212.{third}.{fourth + 1}"
        self.visitor_ip = f"10.212.{third}.{fourth + 2}"
        self.cut_now = False

    def __enter__(self) -> VisitorNetwork:
        _run("ip", "netns", "add", self.namespace)
        try:
            _run(
                "ip",
                "link",
                "add",
                self.host_device,
                "type",
                "veth",
                "peer",
                "name",
                self.ns_device,
            )
            _run("ip", "link", "set", self.ns_device, "netns", self.namespace)
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_device)
            _run("ip", "link", "set", self.host_device, "up")
            inside = ("ip", "-n", self.namespace)
            _run(*inside, "addr", "add", f"{self.visitor_ip}/30", "dev", self.ns_device)
            _run(*inside, "link", "set", self.ns_device, "up")
            _run(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.restore()
        for command in (
            ("ip", "link", "del", self.host_device),
            ("ip", "netns", "del", self.namespace),
        ):
            with contextlib.suppress(subprocess.SubprocessError):
                _run(*command)

    def _nft(self, rules: str, *, inside: bool) -> None:
        prefix = ("ip", "netns", "exec", self.namespace) if inside else ()
        subprocess.run(
            (*prefix, "nft", "-f", "-"), input=rules.encode(), check=True, capture_output=True
        )

    def cut(self) -> None:
        """Drop every IPv4 packet both ways, silently (no errors reach either side)."""
        self._nft(_CUT_RULES.format(device=self.host_device), inside=False)
        self._nft(_CUT_RULES.format(device=self.ns_device), inside=True)
        self.cut_now = True

    def restore(self) -> None:
        if not self.cut_now:
            return
        self.cut_now = False
        _run("nft", "delete", "table", "netdev", "vvcut")
        _run("ip", "netns", "exec", self.namespace, "nft", "delete", "table", "netdev", "vvcut")

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class FrameLog:
    """(wall-clock time, video frames, audio frames) received by one side, as they grew."""

    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def add(self, at: float, video: int, audio: int) -> None:
        self.samples.append((at, video, audio))

    def video_at(self, at: float) -> int:
        before = [video for when, video, _ in self.samples if when <= at]
        return before[-1] if before else 0

    def latest_video(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    async def video_back_after(self, at: float, *, frames: int = 5, within: float = 30.0) -> float:
        """Wall-clock time when `frames` more video frames than at `at` had arrived."""
        base = self.video_at(at)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for when, video, _ in self.samples:
                if when > at and video >= base + frames:
                    return when
            await asyncio.sleep(SAMPLE_EVERY_S)
        raise AssertionError(f"no video for {within} s after {at}")

    async def wait_video(self, frames: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self.latest_video() < frames:
            assert time.monotonic() < deadline, f"only {self.latest_video()} video frames"
            await asyncio.sleep(SAMPLE_EVERY_S)


@contextlib.asynccontextmanager
async def sampled(participant: HeadlessParticipant) -> AsyncIterator[FrameLog]:
    """Sample an in-process participant's received frames every SAMPLE_EVERY_S."""
    log = FrameLog()

    async def sample() -> None:
        while True:
            video, audio = participant.frames_received()
            log.add(time.time(), video, audio)
            await asyncio.sleep(SAMPLE_EVERY_S)

    task = asyncio.create_task(sample())
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class VisitorProcess:
    """The headless visitor in its namespace (``vvserver client join``), read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.frames = FrameLog()
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, network: VisitorNetwork, server_url: str, token: str, seconds: float
    ) -> VisitorProcess:
        command = network.command(
            sys.executable,
            "-m",
            "vvserver",
            "client",
            "join",
            "--server",
            server_url,
            "--role",
            "visitor",
            "--token",
            token,
            "--ice-host",
            network.visitor_ip,
            "--seconds",
            str(seconds),
            "--frames-every",
            str(SAMPLE_EVERY_S * 2),
        )
        process = await asyncio.create_subprocess_exec(
            *command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if "frames" in data:
                    self.frames.add(
                        float(data["at"]), data["frames"]["video"], data["frames"]["audio"]
                    )
                else:
                    self.messages.append((time.time(), data))

    def welcomes_after(self, at: float) -> list[float]:
        return [when for when, m in self.messages if when > at and m.get("type") == "welcome"]

    async def welcomed_after(self, at: float, within: float) -> float | None:
        """Wall-clock time of the first `welcome` after `at` (a new socket), waiting `within`."""
        deadline = time.monotonic() + within
        while True:
            found = self.welcomes_after(at)
            if found or time.monotonic() >= deadline:
                return found[0] if found else None
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
