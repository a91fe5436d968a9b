"""Routes: a facility's reports for its administrators."""

from __future__ import annotations

import logging
from datetime import date

from pydantic import BaseModel, Field

from vvserver.api.endpoints import ADMINS, ApiRouter, RequestContext
from vvserver.api.schemas_recordings import DateRangeQuery
from vvserver.domain.facilities.reports import facility_report

logger = logging.getLogger(__name__)

router = ApiRouter("reports")


class DayOut(BaseModel):
    date: date
    booked: int = Field(description="Visits booked for that day, whatever became of them")
    completed: int
    no_show: int
    cancelled: int
    failed: int
    terminated: int


class MonthOut(BaseModel):
    month: str = Field(description="YYYY-MM")
    visits: int = Field(description="Visits that took place (completed or terminated)")


class RegularityOut(BaseModel):
    person_id: int
    name: str
    booking_number: str
    months: list[MonthOut]


class ReportOut(BaseModel):
    facility_id: int
    timezone: str
    date_from: date
    date_to: date
    visits_per_day: list[DayOut]
    no_show_rate: float | None = Field(
        description="No-shows over visits whose slot came (completed, no-show, failed, terminated)"
    )
    avg_connected_minutes: float | None = Field(
        description="Minutes both sides were connected, averaged over visits that took place"
    )
    lost_minutes: float = Field(description="Minutes either side lost to connection problems")
    contact_regularity: list[RegularityOut]


@router.route(
    "GET",
    "/api/facilities/{facility_id}/reports",
    roles=ADMINS,
    query=DateRangeQuery,
    response=ReportOut,
)
async def reports(ctx: RequestContext, query: DateRangeQuery) -> ReportOut:
    """Visits per day, no-show rate, connected and lost minutes, contact regularity."""
    report = await facility_report(
        ctx.services,
        ctx.require(),
        ctx.path_int("facility_id"),
        query.date_from,
        query.date_to,
    )
    return ReportOut(
        facility_id=report.facility_id,
        timezone=report.timezone,
        date_from=report.date_from,
        date_to=report.date_to,
        visits_per_day=[
            DayOut(
                date=d.date,
                booked=d.booked,
                completed=d.completed,
                no_show=d.no_show,
                cancelled=d.cancelled,
                failed=d.failed,
                terminated=d.terminated,
            )
            for d in report.visits_per_day
        ],
        no_show_rate=report.no_show_rate,
        avg_connected_minutes=report.avg_connected_minutes,
        lost_minutes=report.lost_minutes,
        contact_regularity=[
            RegularityOut(
                person_id=p.person_id,
                name=p.name,
                booking_number=p.booking_number,
                months=[MonthOut(month=m.month, visits=m.visits) for m in p.months],
            )
            for p in report.contact_regularity
        ],
    )
