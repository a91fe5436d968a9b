"""Wiring: the three WebSocket routes, the hub's background work and closing sockets at shutdown."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from vvserver.aio import TaskSet
from vvserver.app_keys import HUB, SERVICES, SIGNALING_TASKS, SOCKETS
from vvserver.signaling.connection import CLOSE_GOING_AWAY, Connection
from vvserver.signaling.hub import SignalingHub
from vvserver.signaling.kiosk_channel import KioskChannel
from vvserver.signaling.media_port import MediaPort
from vvserver.signaling.officer_channel import OfficerChannel
from vvserver.signaling.socket_loop import Channel, serve
from vvserver.signaling.visitor_channel import VisitorChannel, send_visit_status

logger = logging.getLogger(__name__)

ROUTES: tuple[tuple[str, type[Channel]], ...] = (
    ("/ws/visitor", VisitorChannel),
    ("/ws/kiosk", KioskChannel),
    ("/ws/officer", OfficerChannel),
)


def _handler(
    channel_type: type[Channel],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, channel_type(request, request.app[SERVICES]))

    handle.__name__ = f"ws_{channel_type.role}"
    return handle


def install_signaling(app: web.Application, media: MediaPort | None = None) -> None:
    """Add ``/ws/visitor``, ``/ws/kiosk`` and ``/ws/officer`` to an app from ``create_app``.

    ``media`` is the media service (``VisitMedia``); without it offers are answered with the
    ``media_unavailable`` error while everything else (schedule, presence, live list) works.
    """
    services = app[SERVICES]
    hub = SignalingHub(services)

    async def notify_visitor(conn: Connection, visit_id: int) -> None:
        await send_visit_status(hub, conn, visit_id)

    hub.visitor_notifier = notify_visitor
    hub.media = media
    app[HUB] = hub
    app[SOCKETS] = weakref.WeakSet()
    app[SIGNALING_TASKS] = TaskSet()
    for path, channel_type in ROUTES:
        app.router.add_get(path, _handler(channel_type), name=f"ws_{channel_type.role}")

    async def background(app: web.Application) -> AsyncIterator[None]:
        tasks = app[SIGNALING_TASKS]
        hub.started_at = time.monotonic()  # kiosks' grace to reconnect runs from here
        tasks.create(hub.run_events(), name="signaling visit events")
        tasks.create(hub.run_kiosks_seen(), name="signaling kiosks seen")
        yield
        await tasks.close()
        await hub.tasks.close()

    async def close_sockets(app: web.Application) -> None:
        open_sockets = app[SOCKETS]
        for ws in list(open_sockets):
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutdown")

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(close_sockets)
