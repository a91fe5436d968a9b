"""Routes: live-visit actions that do not need a WebSocket (terminate, call quality, metrics)."""

from __future__ import annotations

from pydantic import Field

from vvserver.api.keys import VISIT_MEDIA
from vvserver.api.registry import ADMINS, STAFF, ApiModel, ApiRouter, RequestContext
from vvserver.visits_live import MediaMetrics, VisitQuality

router = ApiRouter("live")


class TerminateIn(ApiModel):
    reason: str = Field(min_length=1, max_length=500, description="Kept with the visit")


@router.route("POST", "/api/visits/{visit_id}/terminate", roles=STAFF, body=TerminateIn)
async def terminate(ctx: RequestContext, body: TerminateIn) -> None:
    """End a visit now (rule violation): both sides are told "ended by the facility"."""
    media = ctx.request.app[VISIT_MEDIA]
    await media.terminate(
        ctx.path_int("visit_id"), ctx.require(), body.reason, request_id=ctx.request_id
    )


@router.route("GET", "/api/visits/{visit_id}/quality", roles=STAFF, response=VisitQuality)
async def quality(ctx: RequestContext) -> VisitQuality:
    """Each participant's latest call figures (fps, bitrate, loss, round-trip time)."""
    return await ctx.request.app[VISIT_MEDIA].quality(ctx.path_int("visit_id"), ctx.require())


@router.route("GET", "/api/metrics", roles=ADMINS, response=MediaMetrics)
async def metrics(ctx: RequestContext) -> MediaMetrics:
    """Media totals of this server process: open calls, forwarded/dropped frames, recordings."""
    return ctx.request.app[VISIT_MEDIA].metrics()
