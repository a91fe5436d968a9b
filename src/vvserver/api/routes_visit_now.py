"""Routes: Visit now (on-demand visits) for visitors: can one start now, and start it."""

from __future__ import annotations

import logging

from vvserver.api.endpoints import ApiRouter, RequestContext
from vvserver.api.routes_visits import booked_out, path_id
from vvserver.api.schemas_visits import BookedVisitOut, VisitNowOut
from vvserver.domain.visits.on_demand import RING_SECONDS, start_visit_now, visit_now_offer

logger = logging.getLogger(__name__)

router = ApiRouter("visits")


@router.route("GET", "/api/persons/{person_id}/visit-now", roles="visitor", response=VisitNowOut)
async def visit_now_status(ctx: RequestContext) -> VisitNowOut:
    """Whether "Visit now" is possible with this person at this moment, or why not: the unit
    allows on-demand visits now, and an online kiosk of the unit is free for the whole visit."""
    services = ctx.services
    person_id = path_id(ctx, "person_id")
    offer = await visit_now_offer(
        services, ctx.require().require_account_id(), person_id, services.kiosks_online.is_online
    )
    return VisitNowOut(
        person_id=person_id,
        available=offer.available,
        code=offer.code,
        message=offer.message,
        minutes=offer.minutes,
        ring_seconds=RING_SECONDS,
    )


@router.route(
    "POST",
    "/api/persons/{person_id}/visit-now",
    roles="visitor",
    response=BookedVisitOut,
    status=201,
)
async def visit_now(ctx: RequestContext) -> BookedVisitOut:
    """Start an on-demand visit now: it rings the kiosk (state ``ringing``) until the resident
    answers, declines, or ``ring_seconds`` pass; 409 with the reason when it cannot start now
    (the codes of ``GET``). The join link is shown in this response only."""
    principal = ctx.require()
    issued = await start_visit_now(
        ctx.services,
        visitor_id=principal.require_account_id(),
        person_id=path_id(ctx, "person_id"),
        kiosk_online=ctx.services.kiosks_online.is_online,
        actor=principal.actor,
        request_id=ctx.request_id,
    )
    return booked_out(issued)
