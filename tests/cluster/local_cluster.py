"""Real server nodes on loopback for the cluster tests, and a failover load balancer.

Each node is ``python -m vvserver serve`` with ``VV_*`` settings: its own HTTP port, its own
ICE address (127.0.0.2, .3, ...), its own data directory, one PostgreSQL database and one
Redis key prefix for all. ``FailoverProxy`` stands in for the load balancer in front of them:
each connection goes to the first node in its list that accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REDIS_URL = os.environ.get("VV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SRC = Path(__file__).resolve().parents[2] / "src"
SECRET = "test-secret-key-0123456789-abcdefghijkl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    index: int
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def node_id(self) -> str:
        return f"{self.name}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.{self.index + 2}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    root: Path
    database_url: str
    redis_prefix: str
    env: dict[str, str] = field(default_factory=dict)
    nodes: dict[int, Node] = field(default_factory=dict)
    # One recordings directory mounted as every node's ``<data dir>/recordings`` (as NFS
    # would be); None: each node records into its own data dir.
    shared_recordings: Path | None = None

    def node(self, index: int) -> Node:
        if index not in self.nodes:
            data_dir = self.root / f"node{index}"
            data_dir.mkdir(parents=True, exist_ok=True)
            if self.shared_recordings is not None:
                self.shared_recordings.mkdir(parents=True, exist_ok=True)
                (data_dir / "recordings").symlink_to(self.shared_recordings)
            self.nodes[index] = Node(index, free_port(), data_dir, self.root / f"node{index}.log")
        return self.nodes[index]

    async def start(self, *indices: int) -> list[Node]:
        started = [self._spawn(self.node(i)) for i in indices]
        await asyncio.gather(*(self._wait_up(node) for node in started))
        return started

    def _spawn(self, node: Node) -> Node:
        env = {
            **os.environ,
            "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "VV_HOST": "127.0.0.1",
            "VV_PORT": str(node.port),
            "VV_DATA_DIR": str(node.data_dir),
            "VV_DATABASE_URL": self.database_url,
            "VV_REDIS_URL": REDIS_URL,
            "VV_REDIS_KEY_PREFIX": self.redis_prefix,
            "VV_NODE_NAME": node.name,
            "VV_PUBLIC_ADDRESS": node.address,
            "VV_SECRET_KEY": SECRET,
            "VV_PUBLIC_URL": "http://127.0.0.1:8080",
            **self.env,
        }
        log = node.log.open("ab")
        node.process = subprocess.Popen(
            [sys.executable, "-m", "vvserver", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=node.data_dir,
        )
        log.close()
        return node

    async def _wait_up(self, node: Node, within: float = 90.0) -> None:
        async with asyncio.timeout(within), aiohttp.ClientSession() as http:
            while True:
                assert node.process is not None
                if node.process.poll() is not None:
                    raise AssertionError(f"{node.name} exited:\n{node.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{node.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.3)

    def kill(self, index: int) -> None:
        """SIGKILL: no drain, no clean-up, as a power cut."""
        process = self.nodes[index].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def freeze(self, index: int) -> None:
        """SIGSTOP: the node stops answering but its connections stay open, as when its
        machine loses power or its network (nothing tells Redis or the clients)."""
        process = self.nodes[index].process
        assert process is not None
        process.send_signal(signal.SIGSTOP)

    async def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.process is None:
                continue
            try:
                await asyncio.to_thread(node.process.wait, 30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.name}\n{n.log.read_text()[-4000:]}"
            for n in self.nodes.values()
            if n.log.exists()
        )


class FailoverProxy:
    """A TCP load balancer stand-in: each connection goes to the first backend that accepts."""

    def __init__(self, backends: list[Node]) -> None:
        self.backends = backends
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FailoverProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for node in self.backends:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                continue
            for source, sink in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.create_task(self._pipe(source, sink))
                self._pipes.add(task)
                task.add_done_callback(self._pipes.discard)
            return
        writer.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()

    async def drop_connections(self) -> None:
        """Cut every connection now (the clients reconnect, through the first node up)."""
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
