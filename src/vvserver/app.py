"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vvserver.aio import TaskSet
from vvserver.api import (
    routes_audit,
    routes_auth,
    routes_chat,
    routes_facilities,
    routes_flags,
    routes_live,
    routes_mfa,
    routes_people,
    routes_recordings,
    routes_reports,
    routes_series,
    routes_system,
    routes_visit_now,
    routes_visitors,
    routes_visits,
)
from vvserver.api.endpoints import ApiRouter, install
from vvserver.api.middleware import error_middleware, request_id_middleware
from vvserver.api.prometheus import REFRESH_S, NodeMetrics
from vvserver.app_keys import CALLS, ENDPOINTS, HUB, METRICS, SERVICES, VISIT_MEDIA, WORKERS
from vvserver.db.engine import Database
from vvserver.domain.accounts.secrets import PasswordHashing
from vvserver.domain.audit.chain import AuditAnchor, AuditLog
from vvserver.domain.clock import Clock, SystemClock
from vvserver.domain.services import Services
from vvserver.domain.visits.reconcile import reconcile_at_startup
from vvserver.media import stack as media_stack
from vvserver.media.remux import recover_recordings
from vvserver.media.room_events import QualityReport, RoomEvent
from vvserver.media.room_registry import RoomRegistry
from vvserver.notify.mailer import run_mailer
from vvserver.scheduling.loop import run_scheduler
from vvserver.serving import install_security_headers
from vvserver.settings import Settings
from vvserver.signaling import install_signaling
from vvserver.signaling.hub import SignalingHub
from vvserver.visits_live import VisitMedia, adopt_recovered_recordings
from vvserver.visits_live.ended_elsewhere import hang_up_ended_visits
from vvserver.web_pages import install_web

if TYPE_CHECKING:
    from vvserver.cluster import Cluster
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)

WorkerFactory = Callable[[Services], Coroutine[Any, Any, None]]

ROUTERS: tuple[ApiRouter, ...] = (
    routes_system.router,
    routes_auth.router,
    routes_mfa.router,
    routes_facilities.router,
    routes_people.router,
    routes_visitors.router,
    routes_visits.router,
    routes_series.router,
    routes_visit_now.router,
    routes_live.router,
    routes_flags.router,
    routes_recordings.router,
    routes_audit.router,
    routes_reports.router,
    routes_chat.router,
)


def build_services(
    settings: Settings, *, clock: Clock | None = None, passwords: PasswordHashing | None = None
) -> Services:
    settings.ensure_data_dir()
    secret = settings.resolved_secret()
    return Services(
        settings=settings,
        db=Database(settings.resolved_database_url),
        clock=clock or SystemClock(),
        audit=AuditLog(AuditAnchor(settings.data_dir / "audit-anchor.json", secret)),
        passwords=passwords or PasswordHashing(),
        secret=secret,
    )


def room_class(settings: Settings) -> type[VisitRoom] | None:
    """The relay's rooms (None: ``VisitMedia`` loads them with the media stack at the first
    call); ``VV_MEDIA_RELAY=stock`` is the benchmark's aiortc baseline only."""
    if settings.media_relay != "stock":
        return None
    from vvserver.client.stock_relay import StockVisitRoom

    return StockVisitRoom


async def refresh_metrics(app: web.Application) -> None:
    """Keep this process's series fresh for scrapes answered by a sibling worker."""
    while True:
        app[METRICS].refresh(app[VISIT_MEDIA].metrics())
        await asyncio.sleep(REFRESH_S)


def default_workers() -> list[WorkerFactory]:
    return [run_mailer, run_scheduler]


def wire_cluster(cluster: Cluster, hub: SignalingHub) -> None:
    """The cluster tells this node's hub what happens on other nodes."""

    def room_event(event: RoomEvent) -> None:
        hub.figures.record(event)  # the live board's figures, whichever node hosts the call
        if not isinstance(event, QualityReport):
            hub.changed()

    cluster.on_room_event(room_event)
    cluster.counts.listeners.append(hub.changed)
    if cluster.media is not None:
        cluster.media.media_lost = hub.media_lost


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    workers: list[WorkerFactory] | None = None,
) -> web.Application:
    """Build the app. The database must already be migrated (``vvserver migrate``).

    With ``settings.redis_url`` the process is the cluster node ``<node_name>/<worker_index>``.
    """
    services = services or build_services(settings)
    app = web.Application(
        client_max_size=max(settings.max_body_bytes, settings.max_upload_bytes),
        middlewares=[request_id_middleware, error_middleware],
    )
    cluster: Cluster | None = None
    if settings.redis_url:
        # Imported in cluster mode only: redis-py and the cluster's modules are ~7 MB resident.
        from vvserver.cluster import Cluster

        cluster = Cluster(settings, services, settings.node_id)
    install_security_headers(app, behind_tls=settings.behind_tls)
    app[SERVICES] = services
    app[WORKERS] = TaskSet()
    app[VISIT_MEDIA] = VisitMedia(services, RoomRegistry(), room_class=room_class(settings))
    app[METRICS] = NodeMetrics(settings)
    app[CALLS] = app[VISIT_MEDIA] if cluster is None else cluster.attach(app[VISIT_MEDIA])
    if cluster is not None:

        async def cluster_up(app: web.Application) -> AsyncIterator[None]:
            await cluster.start()
            yield
            await cluster.close()

        app.cleanup_ctx.append(cluster_up)  # before signaling's: up first, down last
    install_signaling(app, media=app[VISIT_MEDIA] if cluster is None else cluster.media)
    if cluster is not None:
        wire_cluster(cluster, app[HUB])
    app[ENDPOINTS] = install(app, list(ROUTERS))
    install_web(app, settings.resolved_web_dir)
    worker_factories = default_workers() if workers is None else workers

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # The media stack (aiortc, PyAV, ...) loads at the first call, not here: its settings
        # are applied then (now, if something loaded it already).
        media_stack.configure(
            ice_host_addresses=settings.resolved_ice_host_addresses or None,
            wanted_native=settings.media_native,
        )
        app[WORKERS].create(
            hang_up_ended_visits(app[VISIT_MEDIA], services.events), name="hang_up_ended_visits"
        )
        app[WORKERS].create(refresh_metrics(app), name="refresh_metrics")
        if worker_factories:
            # Only the process that runs the timed work repairs what a crash left behind; in a
            # cluster it leaves alone the calls and recordings live nodes hold.
            leave_visits: frozenset[int] = frozenset()
            leave_recordings: frozenset[int] = frozenset()
            leave_directories: frozenset[str] = frozenset()
            if cluster is not None:
                hosted = await cluster.hosted_elsewhere()
                leave_visits, leave_recordings = hosted.visit_ids, hosted.recording_ids
                leave_directories = hosted.directories
            report = await reconcile_at_startup(
                services, leave_visits=leave_visits, leave_recordings=leave_recordings
            )
            logger.info("start-up reconciliation: %s", report)
            recovered = await asyncio.to_thread(
                recover_recordings, settings.recordings_dir, leave_directories
            )
            logger.info("recovered %d recordings left by a crash", len(recovered))
            adopted = await adopt_recovered_recordings(services)
            logger.info("filled %d recording rows from recovered files", adopted)
        for factory in worker_factories:
            app[WORKERS].create(factory(services), name=factory.__qualname__)
        yield
        # Closes every room and records how each visit ended, before the database goes.
        await app[VISIT_MEDIA].close()
        await app[WORKERS].close()
        await services.db.close()

    app.cleanup_ctx.append(lifecycle)
    return app
