"""Typed keys for application and request state (no module-level globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from vvserver.aio import TaskSet
    from vvserver.api.endpoints import Endpoint
    from vvserver.domain.services import Services
    from vvserver.media.room_registry import RoomRegistry
    from vvserver.visits_live import VisitMedia

SERVICES: web.AppKey[Services] = web.AppKey("services")
ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
WORKERS: web.AppKey[TaskSet] = web.AppKey("workers")
ROOMS: web.AppKey[RoomRegistry] = web.AppKey("rooms")
VISIT_MEDIA: web.AppKey[VisitMedia] = web.AppKey("visit_media")
