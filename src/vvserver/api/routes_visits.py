"""Routes: availability, booking, the visit list, cancel/reschedule, calendar files, kiosk day."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import ColumnElement, and_, or_, select

from vvserver.api.endpoints import STAFF, ApiRouter, RequestContext
from vvserver.api.schemas_visits import (
    MAX_ID,
    AvailabilityOut,
    AvailabilityQueryIn,
    BookedVisitOut,
    BookVisitIn,
    CancelIn,
    KioskScheduleOut,
    MinorOut,
    RebookIn,
    RescheduleIn,
    SlotOut,
    VisitListQuery,
    VisitOut,
)
from vvserver.db.models import Facility, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.booking.availability_store import local_midnight, person_availability
from vvserver.domain.booking.book import (
    IssuedVisit,
    Minor,
    book_visit,
    reissue_join_link,
    reschedule_visit,
)
from vvserver.domain.booking.cancellation import cancel_visit
from vvserver.domain.booking.credit import connected_seconds, lost_seconds, makeups_of
from vvserver.domain.booking.rebooking import rebook_credited_visit
from vvserver.domain.errors import DomainError, NotFound
from vvserver.domain.notices.language import DEFAULT_LANGUAGE
from vvserver.domain.visits.kiosk_day import load_kiosk_day
from vvserver.domain.visits.views import VisitView, load_view, load_views, visit_calendar_text

logger = logging.getLogger(__name__)

router = ApiRouter("visits")
VISITOR_OR_STAFF = frozenset({"visitor"} | STAFF)


def path_id(ctx: RequestContext, name: str) -> int:
    """A path id; one no row can have (beyond 32 bits) is simply not found."""
    value = ctx.path_int(name)
    if value > MAX_ID:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return value


def _visit_fields(view: VisitView, rebooked_as: int | None = None) -> dict[str, Any]:
    visit, tz = view.visit, view.tz
    return {
        "id": visit.id,
        "state": visit.state,
        "person_id": visit.person_id,
        "person_name": view.person_name,
        "visitor_id": visit.visitor_id,
        "visitor_name": view.visitor_name,
        "facility_id": visit.facility_id,
        "facility_name": view.facility_name,
        "timezone": view.timezone,
        "unit_id": visit.unit_id,
        "unit_name": view.unit_name,
        "kiosk_id": visit.kiosk_id,
        "kiosk_name": view.kiosk_name,
        "start": visit.start_at.astimezone(tz),
        "end": visit.end_at.astimezone(tz),
        "start_utc": visit.start_at,
        "end_utc": visit.end_at,
        "privileged": visit.privileged,
        "recorded": view.recorded,
        "monitoring_notice": view.monitoring_notice,
        "minors": [MinorOut.model_validate(m) for m in visit.minors],
        "makeup_for_visit_id": visit.makeup_for_visit_id,
        "end_reason": visit.end_reason,
        "credit_flag": visit.credit_flag,
        "lost_seconds": round(lost_seconds(visit)),
        "visitor_lost_seconds": round(visit.visitor_lost_s),
        "kiosk_lost_seconds": round(visit.kiosk_lost_s),
        "connected_seconds": round(connected_seconds(visit)),
        "rebooked_as": rebooked_as,
        "on_demand": visit.on_demand,
        "ring_until": visit.ring_until,
    }


def visit_out(view: VisitView, rebooked_as: int | None = None) -> VisitOut:
    return VisitOut(**_visit_fields(view, rebooked_as))


def booked_out(issued: IssuedVisit) -> BookedVisitOut:
    return BookedVisitOut(**_visit_fields(issued.view), join_url=issued.join_url)


@router.route(
    "GET",
    "/api/persons/{person_id}/availability",
    roles=VISITOR_OR_STAFF,
    query=AvailabilityQueryIn,
    response=AvailabilityOut,
)
async def availability(ctx: RequestContext, query: AvailabilityQueryIn) -> AvailabilityOut:
    """Bookable slots for a person on facility-local dates from..to (at most 31 days)."""
    result = await person_availability(
        ctx.services, ctx.require(), path_id(ctx, "person_id"), query.from_, query.to
    )
    tz = result.person.tz
    return AvailabilityOut(
        person_id=result.person.person_id,
        facility_id=result.person.facility_id,
        timezone=result.person.timezone,
        from_=query.from_,
        to=query.to,
        slot_minutes=result.person.rules.slot_minutes,
        notice=result.notice,
        slots=[
            SlotOut(
                start=slot.start.astimezone(tz),
                end=slot.end.astimezone(tz),
                start_utc=slot.start,
                end_utc=slot.end,
                free_kiosks=slot.free_kiosks,
            )
            for slot in result.slots
        ],
    )


@router.route(
    "POST", "/api/visits", roles="visitor", body=BookVisitIn, response=BookedVisitOut, status=201
)
async def book(ctx: RequestContext, body: BookVisitIn) -> BookedVisitOut:
    """Book a visit slot; the join link is shown in this response only (and e-mailed)."""
    principal = ctx.require()
    issued = await book_visit(
        ctx.services,
        visitor_id=principal.require_account_id(),
        person_id=body.person_id,
        start=body.start,
        minors=[Minor(m.name, m.date_of_birth) for m in body.minors],
        actor=principal.actor,
    )
    return booked_out(issued)


async def _scope_conditions(
    ctx: RequestContext, principal: Principal, query: VisitListQuery
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if principal.role == "visitor":
        conditions.append(Visit.visitor_id == principal.require_account_id())
    elif principal.role == "agency_admin":
        conditions.append(Facility.agency_id == principal.agency_id)
    else:
        conditions.append(Visit.facility_id == principal.facility_id)
    if query.facility_id is not None:
        conditions.append(Visit.facility_id == query.facility_id)
    if query.person_id is not None:
        conditions.append(Visit.person_id == query.person_id)
    if query.state is not None:
        conditions.append(Visit.state == query.state)
    if query.on is not None:
        conditions.append(await _local_day(ctx, query.on, query.facility_id))
    return conditions


async def _local_day(
    ctx: RequestContext, day: date, facility_id: int | None
) -> ColumnElement[bool]:
    """Visits starting on ``day`` in their own facility's time zone."""
    stmt = select(Facility.id, Facility.timezone)
    if facility_id is not None:
        stmt = stmt.where(Facility.id == facility_id)
    async with ctx.services.read() as session:
        zones = (await session.execute(stmt)).all()
    per_facility = []
    for fid, zone in zones:
        tz = ZoneInfo(zone)
        per_facility.append(
            and_(
                Visit.facility_id == fid,
                Visit.start_at >= local_midnight(day, tz),
                Visit.start_at < local_midnight(day + timedelta(days=1), tz),
            )
        )
    return or_(*per_facility) if per_facility else Visit.id.is_(None)


@router.route(
    "GET", "/api/visits", roles=VISITOR_OR_STAFF, query=VisitListQuery, response=list[VisitOut]
)
async def list_visits(ctx: RequestContext, query: VisitListQuery) -> list[VisitOut]:
    """A visitor's own visits, or the visits in a staff member's scope, by start time."""
    conditions = await _scope_conditions(ctx, ctx.require(), query)
    async with ctx.services.read() as session:
        views = await load_views(session, conditions, limit=query.limit, offset=query.offset)
        makeups = await makeups_of(session, [view.visit for view in views])
    return [visit_out(view, makeups.get(view.visit.id)) for view in views]


async def _visible_view(ctx: RequestContext) -> VisitView:
    """The visit in the path, if the caller may see it (its visitor or staff in scope)."""
    return (await _visible_view_and_makeup(ctx, with_makeup=False))[0]


async def _visible_view_and_makeup(
    ctx: RequestContext, *, with_makeup: bool
) -> tuple[VisitView, int | None]:
    principal = ctx.require()
    visit_id = path_id(ctx, "visit_id")
    async with ctx.services.read() as session:
        visit = await session.get(Visit, visit_id)
        if visit is None:
            raise NotFound("no such visit")
        view = await load_view(session, visit)
        makeups = await makeups_of(session, [visit]) if with_makeup else {}
    if principal.role == "visitor":
        if visit.visitor_id != principal.account_id:
            raise NotFound("no such visit")
    else:
        principal.ensure_facility(visit.facility_id, view.agency_id)
    return view, makeups.get(visit_id)


@router.route("GET", "/api/visits/{visit_id}", roles=VISITOR_OR_STAFF, response=VisitOut)
async def get_visit(ctx: RequestContext) -> VisitOut:
    """One visit (its visitor, or staff in scope), with its credit and make-up if any."""
    view, rebooked_as = await _visible_view_and_makeup(ctx, with_makeup=True)
    return visit_out(view, rebooked_as)


@router.route(
    "GET",
    "/api/visits/{visit_id}/calendar.ics",
    roles=VISITOR_OR_STAFF,
    raw_response_type="text/calendar",
)
async def visit_calendar(ctx: RequestContext) -> web.Response:
    """The visit as an iCalendar (RFC 5545) file; for its visitor in their account's language."""
    view = await _visible_view(ctx)
    text = visit_calendar_text(
        view,
        now=ctx.services.clock.now(),
        public_url=ctx.services.settings.public_url,
        language=view.visitor_language if ctx.require().role == "visitor" else DEFAULT_LANGUAGE,
    )
    return web.Response(
        body=text.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="visit-{view.visit.id}.ics"'},
    )


@router.route("POST", "/api/visits/{visit_id}/join-link", roles="visitor", response=BookedVisitOut)
async def new_join_link(ctx: RequestContext) -> BookedVisitOut:
    """Issue a new join link for an active visit; earlier links stop working."""
    principal = ctx.require()
    issued = await reissue_join_link(
        ctx.services, principal.require_account_id(), path_id(ctx, "visit_id")
    )
    return booked_out(issued)


@router.route(
    "POST",
    "/api/visits/{visit_id}/cancel",
    roles=VISITOR_OR_STAFF,
    body=CancelIn,
    response=VisitOut,
)
async def cancel(ctx: RequestContext, body: CancelIn) -> VisitOut:
    """Cancel a visit: its visitor until the cancel deadline, staff (with a reason) any time."""
    principal = ctx.require()
    visit_id = path_id(ctx, "visit_id")
    details: dict[str, Any] = {"reason": body.reason}
    audit = None
    if principal.is_staff:
        audit = ctx.record("visit.cancel", target=f"visit:{visit_id}", details=details)
    try:
        view = await cancel_visit(ctx.services, principal, visit_id, body.reason, audit)
    except DomainError as exc:
        if principal.is_staff:
            await ctx.services.audit_now(
                ctx.record(
                    "visit.cancel",
                    outcome="failure",
                    target=f"visit:{visit_id}",
                    details={**details, "code": exc.code},
                )
            )
        raise
    return visit_out(view)


@router.route(
    "POST",
    "/api/visits/{visit_id}/reschedule",
    roles=VISITOR_OR_STAFF,
    body=RescheduleIn,
    response=BookedVisitOut,
    status=201,
)
async def reschedule(ctx: RequestContext, body: RescheduleIn) -> BookedVisitOut:
    """Move a visit to another slot: the old visit is cancelled, its join link stops working.

    Visitors until the cancellation lead time; staff at any time with a reason (the visitor is
    e-mailed the new time and link; staff never see the visitor's join link).
    """
    principal = ctx.require()
    visit_id = path_id(ctx, "visit_id")
    issued = await reschedule_visit(
        ctx.services,
        principal=principal,
        visit_id=visit_id,
        start=body.start,
        reason=body.reason,
        audit=ctx.record("visit.reschedule", target=f"visit:{visit_id}")
        if principal.is_staff
        else None,
    )
    out = booked_out(issued)
    return out if not principal.is_staff else out.model_copy(update={"join_url": None})


@router.route(
    "POST",
    "/api/visits/{visit_id}/rebook",
    roles="visitor",
    body=RebookIn,
    response=BookedVisitOut,
    status=201,
)
async def rebook(ctx: RequestContext, body: RebookIn) -> BookedVisitOut:
    """Book the free make-up of a visit credited by the facility (failed, or too much time
    lost): every booking rule applies except the weekly limits, which it does not count
    against. Once per credited visit (409 ``already_rebooked``; 409 ``no_credit`` without
    credit)."""
    principal = ctx.require()
    issued = await rebook_credited_visit(
        ctx.services,
        visitor_id=principal.require_account_id(),
        visit_id=path_id(ctx, "visit_id"),
        start=body.start,
        actor=principal.actor,
    )
    return booked_out(issued)


@router.route("GET", "/api/kiosk/schedule", roles="kiosk", response=KioskScheduleOut)
async def kiosk_schedule(ctx: RequestContext) -> KioskScheduleOut:
    """Today's active visits at this kiosk (facility-local day), visitor first names only."""
    principal = ctx.require()
    assert principal.kiosk_id is not None
    now = ctx.services.clock.now()
    async with ctx.services.read() as session:
        day = await load_kiosk_day(session, principal.kiosk_id, now)
    return KioskScheduleOut(
        kiosk_id=day.kiosk_id,
        kiosk_name=day.kiosk_name,
        date=day.date,
        timezone=day.timezone,
        visits=day.visits,
    )
