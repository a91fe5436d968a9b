"""``GET /metrics``: this process's figures in the Prometheus text format (prometheus-client).

Every series carries ``node`` (``--node-name``) and ``worker`` (its index under ``--workers``).
Gauges and counters are refreshed from ``VisitMedia.metrics()`` when scraped and every
``REFRESH_S`` seconds. Under ``--workers N`` the supervisor gives its workers a shared folder
(``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode): each worker writes its
figures there, so a scrape that lands on any worker reports every worker of the machine.

Access: loopback without a proxy in between (no ``Forwarded`` / ``X-Forwarded-For``), or
``Authorization: Bearer <VV_METRICS_TOKEN>`` from anywhere.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from vvserver.domain.errors import Forbidden, Unauthenticated
from vvserver.settings import Settings
from vvserver.visits_live import MediaMetrics

logger = logging.getLogger(__name__)

REFRESH_S = 2.0
# The text format every Prometheus version reads (our names need nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ("node", "worker")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

# (name, help, the MediaMetrics field) of each series.
GAUGES = (
    ("vv_calls", "Calls (media rooms) open on this worker.", "rooms_open"),
    ("vv_participants", "Visitors and kiosks connected to those calls.", "participants_connected"),
    ("vv_monitors", "Officers monitoring those calls.", "monitors"),
)
COUNTERS = (
    ("vv_forwarded_packets", "RTP packets the relay forwarded.", "packets_forwarded_total"),
    ("vv_forwarded_bytes", "RTP payload bytes the relay forwarded.", "bytes_forwarded_total"),
    ("vv_forwarded_frames", "Encoded frames the relay forwarded.", "frames_forwarded_total"),
    ("vv_dropped_frames", "Frames dropped for slow receivers.", "frames_dropped_total"),
    ("vv_calls_opened", "Calls (media rooms) opened.", "rooms_opened_total"),
    ("vv_visits_went_live", "Visits whose two sides connected.", "visits_went_live_total"),
    ("vv_recordings_written", "Recordings finished and written.", "recordings_finished_total"),
    ("vv_recording_failures", "Recording problems.", "recording_failures_total"),
    ("vv_monitors_refused", "Monitor requests refused.", "monitors_refused_total"),
)


class NodeMetrics:
    """The Prometheus series of one process, labelled with its node and worker."""

    def __init__(self, settings: Settings) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        self.token = settings.metrics_token
        self._labels = {"node": settings.node_name, "worker": str(settings.worker_index)}
        self._gauges = {
            field: Gauge(
                name, text, LABELS, registry=self.registry, multiprocess_mode="livesum"
            ).labels(**self._labels)
            for name, text, field in GAUGES
        }
        self._draining = Gauge(
            "vv_draining",
            "1 while the worker drains (SIGTERM/SIGINT): no new call opens on it.",
            LABELS,
            registry=self.registry,
            multiprocess_mode="livesum",
        ).labels(**self._labels)
        self._counters = {
            field: Counter(name, text, LABELS, registry=self.registry).labels(**self._labels)
            for name, text, field in COUNTERS
        }
        self._counted = dict.fromkeys(self._counters, 0)
        Gauge(
            "vv_worker_info",
            "This worker: its process id.",
            (*LABELS, "os_pid"),
            registry=self.registry,
            multiprocess_mode="livesum",
        ).labels(**self._labels, os_pid=str(os.getpid())).set(1)

    def refresh(self, figures: MediaMetrics) -> None:
        """Bring the series up to ``figures`` (counters move by what was added since)."""
        for field, gauge in self._gauges.items():
            gauge.set(getattr(figures, field))
        self._draining.set(1 if figures.draining else 0)
        for field, counter in self._counters.items():
            value = int(getattr(figures, field))
            if value > self._counted[field]:
                counter.inc(value - self._counted[field])
                self._counted[field] = value

    def render(self) -> bytes:
        """The text format: every worker of the machine under ``--workers``, else this one."""
        directory = os.environ.get(MULTIPROCESS_ENV)
        if not directory:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def check_access(request: web.Request, token: str | None) -> None:
    """Loopback (no proxy in between), or the bearer token; else 401/403."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and token is not None:
        if hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode()):
            return
        raise Unauthenticated("wrong metrics token", code="metrics_token_invalid")
    if _from_loopback(request):
        return
    if token is None:
        raise Forbidden("metrics are served to loopback only", code="metrics_loopback_only")
    raise Unauthenticated(
        "send Authorization: Bearer <metrics token>", code="metrics_token_required"
    )


def _from_loopback(request: web.Request) -> bool:
    if any(name in request.headers for name in PROXY_HEADERS):
        return False  # a proxy on this host: the client is somewhere else
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


__all__ = ["CONTENT_TYPE", "NodeMetrics", "check_access"]
