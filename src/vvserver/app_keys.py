"""Every application and request key, in one place (state lives in the app, not in globals).

One object, one key. The edges (``api``, ``signaling``) and the app factory read them; the types
are imported for checking only, so this module depends on nothing at run time.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from vvserver.aio import TaskSet
    from vvserver.api.endpoints import Endpoint
    from vvserver.api.prometheus import NodeMetrics
    from vvserver.domain.services import Services
    from vvserver.signaling.hub import SignalingHub
    from vvserver.visits_live import VisitMedia
    from vvserver.visits_live.calls import LiveCalls

SERVICES: web.AppKey[Services] = web.AppKey("services")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
# The background workers (scheduler, mailer, hang-ups).
WORKERS: web.AppKey[TaskSet] = web.AppKey("workers")
# The media service: rooms, participants, monitors (its rooms are ``VISIT_MEDIA.rooms``).
VISIT_MEDIA: web.AppKey[VisitMedia] = web.AppKey("visit_media")
# ``GET /metrics``: this process's Prometheus series (others may register in its ``registry``).
METRICS: web.AppKey[NodeMetrics] = web.AppKey("metrics")
# Live-call actions wherever the visit's room is (``VISIT_MEDIA``, or the cluster's bridge).
CALLS: web.AppKey[LiveCalls] = web.AppKey("calls")
# The HTTP API's routes, as declared (the OpenAPI document and the authorization tests read them).
ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints")
# Signaling: its state (connections, presence, relays), its tasks, and every open socket.
HUB: web.AppKey[SignalingHub] = web.AppKey("signaling_hub")
SIGNALING_TASKS: web.AppKey[TaskSet] = web.AppKey("signaling_tasks")
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("signaling_sockets")
