"""Routes: health, the OpenAPI document and what the pages show of this installation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from vvserver.api.endpoints import PUBLIC, ApiModel, ApiRouter, RequestContext
from vvserver.api.openapi import build_openapi
from vvserver.app_keys import ENDPOINTS, SERVICES, WORKERS

router = ApiRouter("system")


@router.route("GET", "/healthz", roles=PUBLIC, raw_response_type="application/json")
async def healthz(ctx: RequestContext) -> web.Response:
    """Liveness and readiness: 503 when the database or a background worker is dead."""
    database_ok = await ctx.services.db.ping()
    workers = ctx.request.app[WORKERS]
    dead = sorted(workers.failed)
    body: dict[str, Any] = {
        "status": "ok" if database_ok and not dead else "unavailable",
        "database": "ok" if database_ok else "down",
        "workers": {"running": len(workers.tasks), "dead": dead},
    }
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


@router.route("GET", "/api/openapi.json", roles=PUBLIC, raw_response_type="application/json")
async def openapi(ctx: RequestContext) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    app = ctx.request.app
    assert app[SERVICES] is ctx.services
    return web.json_response(build_openapi(app[ENDPOINTS]))


class SiteOut(ApiModel):
    name: str | None = Field(
        description="The installation's name for the pages' header (the agency or facility); "
        "null: the pages show their default"
    )


@router.route("GET", "/api/site", roles=PUBLIC, response=SiteOut)
async def site(ctx: RequestContext) -> SiteOut:
    """What every page shows of this installation before anyone signs in (its name)."""
    return SiteOut(name=ctx.services.settings.site_name)
