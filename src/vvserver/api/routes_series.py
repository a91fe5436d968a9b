"""Routes: standing weekly visits ("every Sunday at 2 PM"): create, list, pause/resume/cancel."""

from __future__ import annotations

import logging

from vvserver.api.endpoints import STAFF, ApiRouter, RequestContext
from vvserver.api.schemas_series import (
    OccurrenceOut,
    SeriesIn,
    SeriesListQuery,
    SeriesOut,
    SlotSpanOut,
)
from vvserver.api.schemas_visits import MAX_ID, MinorOut
from vvserver.domain.booking.series import (
    SeriesView,
    change_series,
    create_series,
    get_series,
    list_series,
)
from vvserver.domain.booking.slot_checks import Minor
from vvserver.domain.errors import NotFound

logger = logging.getLogger(__name__)

router = ApiRouter("series")
VISITOR_OR_STAFF = frozenset({"visitor"} | STAFF)


def series_out(view: SeriesView) -> SeriesOut:
    series = view.series
    return SeriesOut(
        id=series.id,
        state=series.state,
        person_id=series.person_id,
        person_name=view.person_name,
        visitor_id=series.visitor_id,
        visitor_name=view.visitor_name,
        facility_id=view.facility_id,
        facility_name=view.facility_name,
        timezone=view.timezone,
        weekday=series.weekday,
        time=series.local_time,
        minors=[MinorOut.model_validate(m) for m in series.minors],
        next_date=series.next_date,
        next_start_utc=series.next_start_at,
        books_at=view.books_at,
        end_reason=series.end_reason,
        created_at=series.created_at,
        occurrences=[
            OccurrenceOut(
                date=occ.local_date,
                start_utc=occ.start_at,
                outcome="booked" if occ.outcome == "booked" else "skipped",
                visit_id=occ.visit_id,
                visit_state=occ.visit_state,
                reason_code=occ.reason_code,
                reason=occ.reason,
                alternatives=[SlotSpanOut(start_utc=s, end_utc=e) for s, e in occ.alternatives],
            )
            for occ in view.occurrences
        ],
    )


def _series_id(ctx: RequestContext) -> int:
    value = ctx.path_int("series_id")
    if value > MAX_ID:
        raise NotFound("no such series")
    return value


@router.route("POST", "/api/series", roles="visitor", body=SeriesIn, response=SeriesOut, status=201)
async def create(ctx: RequestContext, body: SeriesIn) -> SeriesOut:
    """Ask for a standing weekly visit; each week is booked when its booking window opens."""
    view = await create_series(
        ctx.services,
        ctx.require(),
        person_id=body.person_id,
        weekday=body.weekday,
        at=body.time,
        minors=[Minor(m.name, m.date_of_birth) for m in body.minors],
    )
    return series_out(view)


@router.route(
    "GET", "/api/series", roles=VISITOR_OR_STAFF, query=SeriesListQuery, response=list[SeriesOut]
)
async def list_all(ctx: RequestContext, query: SeriesListQuery) -> list[SeriesOut]:
    """A visitor's own weekly visits; staff: those of the people in their scope."""
    views = await list_series(
        ctx.services,
        ctx.require(),
        facility_id=query.facility_id,
        person_id=query.person_id,
        include_closed=query.include_closed,
    )
    return [series_out(view) for view in views]


@router.route("GET", "/api/series/{series_id}", roles=VISITOR_OR_STAFF, response=SeriesOut)
async def get_one(ctx: RequestContext) -> SeriesOut:
    """One weekly visit with its latest occurrences (booked or skipped, and why)."""
    return series_out(await get_series(ctx.services, ctx.require(), _series_id(ctx)))


@router.route("POST", "/api/series/{series_id}/pause", roles="visitor", response=SeriesOut)
async def pause(ctx: RequestContext) -> SeriesOut:
    """Stop booking (visits already booked stay booked)."""
    return series_out(await change_series(ctx.services, ctx.require(), _series_id(ctx), "pause"))


@router.route("POST", "/api/series/{series_id}/resume", roles="visitor", response=SeriesOut)
async def resume(ctx: RequestContext) -> SeriesOut:
    """Book again, from the first occurrence the booking lead time still allows."""
    return series_out(await change_series(ctx.services, ctx.require(), _series_id(ctx), "resume"))


@router.route("POST", "/api/series/{series_id}/cancel", roles="visitor", response=SeriesOut)
async def cancel(ctx: RequestContext) -> SeriesOut:
    """End the weekly visit for good (visits already booked stay booked)."""
    return series_out(await change_series(ctx.services, ctx.require(), _series_id(ctx), "cancel"))
