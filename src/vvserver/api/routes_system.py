"""Routes: health, metrics, the OpenAPI document and what the pages show of this installation."""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from pydantic import Field

from vvserver.api.endpoints import PUBLIC, ApiModel, ApiRouter, RequestContext
from vvserver.api.openapi import build_openapi
from vvserver.api.prometheus import CONTENT_TYPE, check_access
from vvserver.app_keys import ENDPOINTS, METRICS, SERVICES, VISIT_MEDIA, WORKERS

router = ApiRouter("system")


@router.route("GET", "/healthz", roles=PUBLIC, raw_response_type="application/json")
async def healthz(ctx: RequestContext) -> web.Response:
    """Liveness and readiness: 503 when the database or a background worker is dead, or when
    the process drains.

    Body: `status` (`ok`, `draining`: SIGTERM/SIGINT came, calls here go on but no new one
    opens, or `unavailable`), `database` (`ok` / `down`), `workers` (`running`, `dead`: the
    background tasks), `node` (`<node name>/<worker index>`) and `pid` (the answering process;
    under `--workers N` each connection may land on another worker).
    """
    app = ctx.request.app
    settings = ctx.services.settings
    database_ok = await ctx.services.db.ping()
    workers = app[WORKERS]
    dead = sorted(workers.failed)
    status = "ok" if database_ok and not dead else "unavailable"
    if status == "ok" and app[VISIT_MEDIA].draining:
        status = "draining"
    body: dict[str, Any] = {
        "status": status,
        "database": "ok" if database_ok else "down",
        "workers": {"running": len(workers.tasks), "dead": dead},
        "node": settings.node_id,
        "pid": os.getpid(),
    }
    return web.json_response(body, status=200 if status == "ok" else 503)


@router.route("GET", "/metrics", roles=PUBLIC, raw_response_type=CONTENT_TYPE, own_credentials=True)
async def metrics(ctx: RequestContext) -> web.Response:
    """Figures for Prometheus (text format 0.0.4), labelled `node` and `worker`.

    Calls, participants and monitors open now; packets, bytes and frames the relay forwarded
    and dropped; calls opened; recordings written and failed; `vv_draining` (1 while the
    worker drains); `vv_worker_info` (its pid). Under `--workers N` any worker answers for
    every worker of the machine. Allowed from loopback when no proxy header (`Forwarded`,
    `X-Forwarded-For`, `X-Real-IP`) is present; from anywhere else only with
    `Authorization: Bearer <VV_METRICS_TOKEN>` (401 `metrics_token_required` /
    `metrics_token_invalid`; 403 `metrics_loopback_only` when no token is configured).
    """
    app = ctx.request.app
    node_metrics = app[METRICS]
    check_access(ctx.request, node_metrics.token)
    node_metrics.refresh(app[VISIT_MEDIA].metrics())
    return web.Response(body=node_metrics.render(), headers={"Content-Type": CONTENT_TYPE})


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
