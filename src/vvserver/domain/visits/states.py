"""The visit state machine. Every transition is stored with time, actor and reason.

scheduled -> ready (join window open) -> live (both sides connected) -> completed
and from any active state: cancelled | no_show | terminated | failed.

Visit now (``domain.visits.on_demand``): an on-demand visit starts as ``ringing`` (active: it
holds its kiosk and counts like a booked visit) and becomes ``ready`` when it is answered, or
``declined`` (refused, withdrawn, or unanswered in time: never a no-show, never counted).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Visit, VisitTransition
from vvserver.domain.errors import Conflict

logger = logging.getLogger(__name__)

ENDED_VISITS_KEY = "vv_ended_visits"
TERMINAL_STATES = frozenset(
    {"completed", "cancelled", "no_show", "terminated", "failed", "declined"}
)
ALLOWED: dict[str, frozenset[str]] = {
    "ringing": frozenset({"ready", "declined", "cancelled", "terminated", "failed"}),
    "scheduled": frozenset({"ready", "live", "cancelled", "no_show", "failed", "terminated"}),
    "ready": frozenset({"scheduled", "live", "cancelled", "no_show", "failed", "terminated"}),
    "live": frozenset({"ready", "completed", "terminated", "failed", "no_show"}),
}
# Which end states count against weekly limits (conduct terminations set it explicitly).
COUNTS_TOWARD_LIMIT = {
    "completed": True,
    "no_show": True,
    "cancelled": False,
    "failed": False,
    "terminated": True,
    "declined": False,
}


def transition(
    session: AsyncSession,
    visit: Visit,
    to_state: str,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    counts_toward_limit: bool | None = None,
) -> None:
    """Move ``visit`` to ``to_state`` inside the caller's write transaction."""
    old = visit.state
    if to_state not in ALLOWED.get(old, frozenset()):
        raise Conflict(f"visit is {old}; cannot become {to_state}", code="invalid_transition")
    visit.state = to_state
    visit.updated_at = now
    if to_state in TERMINAL_STATES:
        visit.end_reason = reason
        if visit.makeup_for_visit_id is not None or visit.limit_exempt:
            visit.counts_toward_limit = False
        elif counts_toward_limit is not None:
            visit.counts_toward_limit = counts_toward_limit
        else:
            visit.counts_toward_limit = COUNTS_TOWARD_LIMIT[to_state]
        if to_state == "failed":
            visit.credit_flag = True
        # Services.write publishes these once the transaction has committed.
        session.info.setdefault(ENDED_VISITS_KEY, []).append((visit.id, to_state, reason))
    session.add(
        VisitTransition(
            visit_id=visit.id, at=now, from_state=old, to_state=to_state, actor=actor, reason=reason
        )
    )
    logger.info("visit %s: %s -> %s by %s (%s)", visit.id, old, to_state, actor, reason or "-")


def is_active(visit: Visit) -> bool:
    return visit.state in ACTIVE_VISIT_STATES
