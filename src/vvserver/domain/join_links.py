"""Join links for visits: issue (shown once, only the hash kept), re-issue, and verify.

``verify_join`` is what the signaling layer calls with the token from ``/join/{token}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Visit
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.jointoken import issue_join_token, verify_join_token
from vvserver.domain.secrets import constant_time_equal
from vvserver.domain.visit_views import VisitView, load_view
from vvserver.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedVisit:
    """A visit with a freshly issued join link (shown once: only its hash is stored)."""

    view: VisitView
    join_url: str


def join_url(services: Services, token: str) -> str:
    return f"{services.settings.public_url.rstrip('/')}/join/{token}"


async def locked_visit(session: AsyncSession, visit_id: int) -> Visit:
    """The visit row, locked (``FOR UPDATE`` on PostgreSQL); NotFound when there is none."""
    visit = (
        await session.execute(select(Visit).where(Visit.id == visit_id).with_for_update())
    ).scalar_one_or_none()
    if visit is None:
        raise NotFound("no such visit")
    return visit


async def reissue_join_link(services: Services, visitor_id: int, visit_id: int) -> IssuedVisit:
    """A new join link for the visitor's active visit; the previous link stops working."""
    now = services.clock.now()
    async with services.write() as session:
        visit = await locked_visit(session, visit_id)
        if visit.visitor_id != visitor_id:
            raise NotFound("no such visit")
        if visit.state not in ACTIVE_VISIT_STATES:
            raise Conflict(f"this visit is {visit.state}", code="visit_not_active")
        view = await load_view(session, visit)
        # Each token carries a random jti, so the new one never equals the current one.
        token, digest = issue_join_token(
            services.secret,
            visit_id=visit.id,
            visitor_id=visitor_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
            join_window_minutes=view.rules.join_window_minutes,
            issued_at=now,
        )
        visit.join_token_hash = digest
        visit.updated_at = now
    return IssuedVisit(view=view, join_url=join_url(services, token))


async def verify_join(services: Services, token: str) -> Visit:
    """The active visit a join link opens; Forbidden when the link is invalid, old or out of time.

    Checks the signature and time window, that the token is the visit's current one (a re-issued
    link or a rescheduled visit makes older links fail) and that the visit is still active.
    """
    claims = verify_join_token(services.secret, token, services.clock.now())
    async with services.read() as session:
        visit = await session.get(Visit, claims.visit_id)
    current = visit.join_token_hash if visit is not None else None
    if (
        visit is None
        or current is None
        or visit.visitor_id != claims.visitor_id
        or not constant_time_equal(current, claims.token_hash)
    ):
        raise Forbidden("this join link is no longer valid", code="join_link_revoked")
    if visit.state not in ACTIVE_VISIT_STATES:
        raise Forbidden(f"this visit is {visit.state}", code="visit_not_active")
    return visit
