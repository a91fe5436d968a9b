"""``vvserver serve --workers N``: a supervising process and N workers sharing one port.

Each worker is an ordinary ``vvserver serve`` process (the same flags plus ``--worker-index``)
with its own event loop, media relay and signaling hub, and binds the HTTP port itself with
SO_REUSEPORT: the kernel spreads new connections over the workers' listening sockets, evenly,
without a shared accept queue for all of them to wake on, and a worker that drains closes its
own socket so the kernel stops giving it connections while its siblings go on. (A parent that
accepts and hands out sockets would put every connection through one more process.)

The supervisor migrates the database and seeds the demo once, reserves the port (a bound socket
that does not listen, so ``--port 0`` gives all workers the same port), starts the workers and
keeps N running: a worker that exits while the supervisor is not stopping is started again,
after a pause that grows while it keeps failing fast. ``kill -TERM <worker pid>`` therefore
drains and replaces one worker without disturbing the others. SIGTERM or SIGINT to the
supervisor drains every worker; it exits 0 once all have exited 0.

The workers' metrics meet in a shared folder (prometheus-client's multiprocess mode), so
``/metrics`` on any worker reports every worker of the machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.multiprocess import mark_process_dead

from vvserver.aio import wait_event
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
RESPAWN_FIRST_S = 1.0
RESPAWN_MAX_S = 30.0
# A worker that ran this long before exiting was not crash-looping: restart it at once.
HEALTHY_RUN_S = 30.0

WorkerArgv = Callable[[int, int], list[str]]  # (worker index, port) -> the command line


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    last_exit: int | None = None


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket: the workers' port, held while we run."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def worker_argv(argv: list[str]) -> WorkerArgv:
    """The worker's command line: this command's own flags plus its index and the port."""

    def build(index: int, port: int) -> list[str]:
        flags = ["--worker-index", str(index), "--port", str(port)]
        return [sys.executable, "-m", "vvserver", *argv, *flags]

    return build


class Supervisor:
    def __init__(self, settings: Settings, command: WorkerArgv) -> None:
        self.settings = settings
        self.command = command
        self.workers = [Worker(index) for index in range(settings.workers)]
        self.stopping = False
        self._stopped = asyncio.Event()
        self._metrics_dir = ""
        self._port = settings.port

    async def run(self) -> int:
        """Run the workers until a stop signal and all of them have exited; the exit code."""
        reserved = reserve_port(self.settings.host, self.settings.port)
        self._port = reserved.getsockname()[1]
        self._metrics_dir = tempfile.mkdtemp(prefix="vvserver-metrics-")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signal.Signals(signum).name)
        print(
            f"vvserver supervising {len(self.workers)} workers on "
            f"http://{self.settings.host}:{self._port} (pid {os.getpid()})",
            flush=True,
        )
        try:
            await asyncio.gather(*(self._keep(worker) for worker in self.workers))
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            reserved.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        failed = [w.index for w in self.workers if w.last_exit != 0]
        if failed:
            logger.error("workers %s did not stop cleanly", failed)
            return 1
        logger.info("all %d workers stopped cleanly", len(self.workers))
        return 0

    def stop(self, reason: str) -> None:
        """Drain every worker (a second signal changes nothing)."""
        if not self.stopping:
            logger.info("%s: draining all workers", reason)
        self.stopping = True
        self._stopped.set()
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)

    async def _keep(self, worker: Worker) -> None:
        """Start the worker, and again whenever it exits while we are not stopping."""
        pause = RESPAWN_FIRST_S
        while not self.stopping:
            env = {**os.environ, METRICS_DIR_ENV: self._metrics_dir}
            worker.process = await asyncio.create_subprocess_exec(
                *self.command(worker.index, self._port), env=env
            )
            worker.started = time.monotonic()
            if self.stopping:  # the signal came while it was starting
                worker.process.send_signal(signal.SIGTERM)
            code = await worker.process.wait()
            worker.last_exit = code
            mark_process_dead(worker.process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping:
                return
            ran = time.monotonic() - worker.started
            pause = RESPAWN_FIRST_S if ran >= HEALTHY_RUN_S else min(pause * 2, RESPAWN_MAX_S)
            worker.restarts += 1
            logger.warning(
                "worker %d (pid %d) exited with %s after %.0f s; starting it again in %.0f s",
                worker.index,
                worker.process.pid,
                code,
                ran,
                0 if ran >= HEALTHY_RUN_S else pause,
            )
            if ran < HEALTHY_RUN_S:
                await self._sleep_unless_stopping(pause)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        await wait_event(self._stopped, seconds)
