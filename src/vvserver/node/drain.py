"""SIGTERM and SIGINT drain a process: its calls end or move, then it stops cleanly.

1. No new room opens here (``VisitMedia.draining``; ``/healthz`` says ``draining`` with 503, so
   a load balancer sends new visitors elsewhere). A worker of ``--workers N`` also stops
   listening at once: the kernel hands new connections to its siblings on the same port.
2. Calls already here go on until they end or ``drain_timeout_s`` passes.
3. At the deadline each call left is handed off: its room closes (recording finished, the
   visit ``ready`` again with its connection time written), then its clients get ``rejoin``
   and come back through a new socket (another node, or this server once it is back).
4. The caller closes every socket with 1001 and the process exits 0.

A second signal during a drain changes nothing (``--workers`` sends one to every worker, and
a terminal's Ctrl-C reaches them as well); SIGKILL is the way to stop without a drain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from vvserver.app_keys import HUB, SERVICES, VISIT_MEDIA
from vvserver.visits_live.handoff import DRAIN_MESSAGE

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PARENT_CHECK_S = 1.0


@dataclass
class DrainReport:
    """What a drain did, for the log line at exit (and tests)."""

    calls_at_start: int = 0
    calls_ended_in_time: bool = True
    handed_off: list[int] = field(default_factory=list)
    rejoins_sent: int = 0
    seconds: float = 0.0


class StopRequest:
    """Set by SIGTERM or SIGINT (or the death of a supervising parent): time to drain."""

    def __init__(self, *, parent_pid: int | None = None) -> None:
        self._event = asyncio.Event()
        self.reason: str | None = None
        self._parent_pid = parent_pid
        self._watch: asyncio.Task[None] | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request, signal.Signals(signum).name)
        if self._parent_pid is not None:
            self._watch = asyncio.create_task(self._watch_parent(), name="watch the supervisor")

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        if self._watch is not None:
            self._watch.cancel()

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            logger.info("%s: draining (pid %d)", reason, os.getpid())
        self._event.set()

    async def wait(self) -> str:
        await self._event.wait()
        return self.reason or "stop"

    async def _watch_parent(self) -> None:
        # A worker whose supervisor died (SIGKILL, OOM) drains instead of running orphaned.
        while True:
            await asyncio.sleep(PARENT_CHECK_S)
            if os.getppid() != self._parent_pid:
                self.request("supervisor gone")
                return


async def drain(
    app: web.Application, *, stop_listening: Callable[[], Awaitable[None]]
) -> DrainReport:
    """Steps 1-3 above; the caller then runs the app's cleanup (step 4)."""
    settings = app[SERVICES].settings
    media = app[VISIT_MEDIA]
    started = time.monotonic()
    report = DrainReport(calls_at_start=len(media.rooms))
    media.start_draining()
    if settings.workers > 1:
        await stop_listening()
    report.calls_ended_in_time = await media.wait_idle(within=settings.drain_timeout_s)
    if not report.calls_ended_in_time:
        report.handed_off = await media.hand_off_all()
        hub = app[HUB]
        for visit_id in report.handed_off:
            try:
                report.rejoins_sent += await hub.send_rejoin(visit_id, DRAIN_MESSAGE)
            except Exception:
                logger.exception("visit %s: could not tell its clients to re-join", visit_id)
    report.seconds = round(time.monotonic() - started, 3)
    logger.info(
        "drained in %.1f s: %d calls at the start, %s; %d handed off, %d sockets told to re-join",
        report.seconds,
        report.calls_at_start,
        "all ended in time" if report.calls_ended_in_time else "the deadline came",
        len(report.handed_off),
        report.rejoins_sent,
    )
    return report
