"""Handing a draining node's calls over: a room's end that is not the visit's end.

At the drain deadline each room still open closes with reason ``draining``: its last
connection time is written, the recording is finished, and a visit that was ``live`` goes back
to ``ready`` with ``DRAIN_REASON`` (resumable, as after a restart). Its clients are then told
to re-join (the ``rejoin`` message); the room opened for the visit next, on another node or on
this one once it is back, counts both sides as lost from the hand-off until each is connected
again (``handed_off_at``): the same visit, the same clock, a new recording, the gap as lost time.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import VisitTransition

logger = logging.getLogger(__name__)

DRAIN_REASON = "server draining: clients re-join"
DRAIN_MESSAGE = "the server is restarting; the call continues in a moment"


async def handed_off_at(session: AsyncSession, visit_id: int) -> datetime | None:
    """When the visit's call was handed off by a draining node, if nothing happened since."""
    last = (
        await session.execute(
            select(
                VisitTransition.from_state,
                VisitTransition.to_state,
                VisitTransition.reason,
                VisitTransition.at,
            )
            .where(VisitTransition.visit_id == visit_id)
            .order_by(VisitTransition.id.desc())
            .limit(1)
        )
    ).first()
    if last is None:
        return None
    from_state, to_state, reason, at = last
    if (from_state, to_state, reason) != ("live", "ready", DRAIN_REASON):
        return None
    return at
