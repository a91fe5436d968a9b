"""One serving process: the HTTP site, then a drain on SIGTERM/SIGINT, then a clean stop."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from vvserver.app import create_app
from vvserver.domain.services import Services
from vvserver.node.drain import DrainReport, StopRequest, drain
from vvserver.serving import AppRunner
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

# After the drain: how long requests still being answered get before their connections close.
SHUTDOWN_TIMEOUT_S = 10.0


async def serve_process(
    settings: Settings, services: Services, *, parent_pid: int | None = None
) -> DrainReport:
    """Serve until SIGTERM or SIGINT, drain, close every socket (1001) and return.

    A worker of ``--workers N`` binds the port with SO_REUSEPORT (its siblings bind it too);
    ``parent_pid``: its supervisor, whose death makes it drain.
    """
    app = create_app(settings, services=services)
    runner = AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    stop = StopRequest(parent_pid=parent_pid)
    stop.install()
    try:
        site = web.TCPSite(
            runner, settings.host, settings.port, reuse_port=True if settings.workers > 1 else None
        )
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port
        print(
            f"vvserver listening on http://{settings.host}:{port} "
            f"(node {settings.node_id}, pid {os.getpid()})",
            flush=True,
        )
        await stop.wait()
        report = await drain(app, stop_listening=site.stop)
    finally:
        stop.uninstall()
        await runner.cleanup()  # sockets closed with 1001, rooms, workers, the database
    logger.info("stopped cleanly (node %s, pid %d)", settings.node_id, os.getpid())
    return report
