"""Routes: live-visit actions that need no WebSocket: monitor, terminate, quality, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from dataclasses import dataclass

from pydantic import BaseModel, Field

from vvserver.api.endpoints import ADMINS, STAFF, ApiModel, ApiRouter, RequestContext
from vvserver.app_keys import CALLS, SOCKETS, VISIT_MEDIA
from vvserver.visits_live import MAX_REASON_CHARS, MediaMetrics, VisitQuality

router = ApiRouter("live")


class TerminateIn(ApiModel):
    reason: str = Field(
        min_length=1, max_length=MAX_REASON_CHARS, description="Kept with the visit"
    )


@router.route("POST", "/api/visits/{visit_id}/terminate", roles=STAFF, body=TerminateIn)
async def terminate(ctx: RequestContext, body: TerminateIn) -> None:
    """End a visit now (rule violation): both sides are told "ended by the facility"."""
    media = ctx.request.app[CALLS]
    await media.terminate(
        ctx.path_int("visit_id"), ctx.require(), body.reason, request_id=ctx.request_id
    )


class SdpIn(ApiModel):
    sdp: str = Field(min_length=1, max_length=60_000, description="A complete (non-trickle) offer")


class SdpOut(BaseModel):
    sdp: str


@router.route("POST", "/api/visits/{visit_id}/monitor", roles=STAFF, body=SdpIn, response=SdpOut)
async def start_monitor(ctx: RequestContext, body: SdpIn) -> SdpOut:
    """Watch both sides of a live call, unseen (refused and audited on privileged visits).

    The offer has up to two audio and two video recvonly sections: per kind the first plays
    the visitor, the second the kiosk. The answer carries all candidates (no trickle).
    """
    media = ctx.request.app[CALLS]
    answer = await media.monitor(
        ctx.path_int("visit_id"), ctx.require(), body.sdp, request_id=ctx.request_id
    )
    return SdpOut(sdp=answer)


@router.route("DELETE", "/api/visits/{visit_id}/monitor", roles=STAFF)
async def stop_monitor(ctx: RequestContext) -> None:
    """Stop watching (also happens by itself when the officer's connection closes)."""
    await ctx.request.app[CALLS].stop_monitor(
        ctx.path_int("visit_id"), ctx.require(), request_id=ctx.request_id
    )


@router.route("GET", "/api/visits/{visit_id}/quality", roles=STAFF, response=VisitQuality)
async def quality(ctx: RequestContext) -> VisitQuality:
    """Each participant's latest call figures (fps, bitrate, loss, round-trip time)."""
    return await ctx.request.app[CALLS].quality(ctx.path_int("visit_id"), ctx.require())


@dataclass(frozen=True, slots=True)
class ServerMetrics(MediaMetrics):
    """The media totals, and the process's own figures (for leak checks such as a soak run)."""

    asyncio_tasks: int = 0  # tasks alive in the event loop
    websockets_open: int = 0  # signaling sockets (visitor, kiosk, officer)
    open_fds: int | None = None  # file descriptors (None where /proc is not there)
    rss_bytes: int | None = None  # resident memory


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@router.route("GET", "/api/metrics", roles=ADMINS, response=ServerMetrics)
async def metrics(ctx: RequestContext) -> ServerMetrics:
    """This server process: open calls, forwarded/dropped frames, recordings; event-loop
    tasks, signaling sockets, file descriptors and resident memory."""
    media = ctx.request.app[VISIT_MEDIA].metrics()
    sockets = ctx.request.app[SOCKETS]
    open_sockets = len([ws for ws in list(sockets) if not ws.closed])
    return ServerMetrics(
        **dataclasses.asdict(media),
        asyncio_tasks=len(asyncio.all_tasks()),
        websockets_open=open_sockets,
        open_fds=_open_fds(),
        rss_bytes=_rss_bytes(),
    )
