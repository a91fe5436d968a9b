"""Routes: flagging moments of a visit (staff), with the note's offset from the visit start."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from vvserver.api.endpoints import STAFF, ApiModel, ApiRouter, RequestContext
from vvserver.db.models import VisitFlag
from vvserver.domain.visits.flags import MAX_NOTE_CHARS, FlagRequest, flag_visit, list_flags

router = ApiRouter("flags")


class FlagIn(ApiModel):
    note: str = Field(
        min_length=1, max_length=MAX_NOTE_CHARS, description="What happened at this moment"
    )


class FlagOut(BaseModel):
    id: int
    visit_id: int
    at: datetime
    offset_s: float = Field(description="Seconds from the visit's start (0 to its length)")
    note: str
    created_by: int

    @classmethod
    def of(cls, flag: VisitFlag) -> FlagOut:
        return cls(
            id=flag.id,
            visit_id=flag.visit_id,
            at=flag.at,
            offset_s=flag.offset_s,
            note=flag.note,
            created_by=flag.created_by,
        )


@router.route(
    "POST",
    "/api/visits/{visit_id}/flags",
    roles=STAFF,
    body=FlagIn,
    response=FlagOut,
    status=201,
)
async def create_flag(ctx: RequestContext, body: FlagIn) -> FlagOut:
    """Flag the current moment of a started (or just-ended) visit; refused on privileged ones."""
    flag = await flag_visit(
        ctx.services,
        ctx.require(),
        FlagRequest(visit_id=ctx.path_int("visit_id"), note=body.note, request_id=ctx.request_id),
    )
    return FlagOut.of(flag)


@router.route("GET", "/api/visits/{visit_id}/flags", roles=STAFF, response=list[FlagOut])
async def visit_flags(ctx: RequestContext) -> list[FlagOut]:
    """The visit's flags in the order of the call."""
    flags = await list_flags(ctx.services, ctx.require(), ctx.path_int("visit_id"))
    return [FlagOut.of(flag) for flag in flags]
