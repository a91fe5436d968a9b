"""Routes: a visit's in-call chat messages (sent over the visitor and kiosk WebSockets)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vvserver.api.endpoints import STAFF, ApiRouter, RequestContext
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.visits.chat import visit_messages

logger = logging.getLogger(__name__)

router = ApiRouter("chat")


class ChatLineOut(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)

    id: int
    sender: Literal["visitor", "kiosk"] = Field(alias="from")
    text: str
    at: datetime


@router.route(
    "GET",
    "/api/visits/{visit_id}/messages",
    roles=STAFF | {"visitor", "kiosk"},
    response=list[ChatLineOut],
)
async def messages(ctx: RequestContext) -> list[ChatLineOut]:
    """The visit's chat in order: its visitor, its kiosk, staff in scope (not if privileged)."""
    lines = await visit_messages(
        ctx.services, Caller(ctx.require(), ctx.record), ctx.path_int("visit_id")
    )
    return [
        ChatLineOut(
            id=line.id, sender=line.sender, text=line.text, at=datetime.fromisoformat(line.at_iso)
        )
        for line in lines
    ]
