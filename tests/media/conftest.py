"""Media tests: loopback-only ICE, the shared pre-encoded clip, and leak accounting."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiortc import RTCPeerConnection

from vvserver.client.sample_clip import Clip, load_clip
from vvserver.media.aiortc_hooks import set_ice_host_addresses


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    """Traffic stays on 127.0.0.1: no interfaces, no STUN (ice_servers are always empty)."""
    set_ice_host_addresses(["127.0.0.1"])
    yield
    set_ice_host_addresses(None)


@pytest.fixture(scope="session")
def clip() -> Clip:
    return load_clip()


def _open_sockets() -> int:
    """Open socket fds (ICE/DTLS transports). Other fds (files, pipes, eventfds) come and go
    with unrelated parts of the process, e.g. a database pool or another test's threads."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed while listing
    return count


@dataclass(frozen=True)
class Resources:
    fds: int
    tasks: int
    peer_connections: int
    threads: int

    @classmethod
    def now(cls) -> Resources:
        gc.collect()
        current = asyncio.current_task()
        return cls(
            fds=_open_sockets(),
            tasks=len([t for t in asyncio.all_tasks() if t is not current]),
            peer_connections=sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects()),
            threads=threading.active_count(),
        )


async def assert_back_to(baseline: Resources, within: float = 5.0) -> None:
    """Open fds, tasks, RTCPeerConnections and threads return to `baseline` (aiortc finishes
    some of its own tasks shortly after close(), hence the wait)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        current = Resources.now()
        if current == baseline or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert current == baseline
