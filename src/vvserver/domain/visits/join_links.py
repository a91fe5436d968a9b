"""Join links for visits: the signed token, and its issue (shown once), re-issue and check.

A join link carries an HS256 JWT bound to one visit and one visitor, valid in the visit window,
checked with an algorithm allowlist and exp/nbf/aud/iss. Only the SHA-256 of the current token
is stored on the visit (re-issuing or rescheduling replaces it, so an old link stops working).
``verify_join`` is what the signaling layer calls with the token from ``/join/{token}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import ACTIVE_VISIT_STATES, Visit
from vvserver.domain.accounts.secrets import constant_time_equal, new_token, token_hash
from vvserver.domain.errors import Conflict, Forbidden, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.views import VisitView, load_view

logger = logging.getLogger(__name__)

AUDIENCE = "vvserver:join"
ISSUER = "vvserver"
ALGORITHMS = ["HS256"]


@dataclass(frozen=True, slots=True)
class JoinClaims:
    visit_id: int
    visitor_id: int
    token_hash: str


def issue_join_token(
    secret: bytes,
    *,
    visit_id: int,
    visitor_id: int,
    start_at: datetime,
    end_at: datetime,
    join_window_minutes: int,
    issued_at: datetime,
) -> tuple[str, str]:
    """Return (token, sha256 of token). The token is valid from start - window to end."""
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(visitor_id),
        "vid": visit_id,
        "iat": int(issued_at.timestamp()),
        "nbf": int((start_at - timedelta(minutes=join_window_minutes)).timestamp()),
        "exp": int(end_at.timestamp()),
        # Unique per issue, so a re-issued link never equals the one it replaces.
        "jti": new_token(8),
    }
    import jwt  # PyJWT loads cryptography (~7 MB resident): at the first link, not at start

    token = jwt.encode(claims, secret, algorithm="HS256")
    return token, token_hash(token)


def verify_join_token(secret: bytes, token: str, now: datetime) -> JoinClaims:
    """Check signature, algorithm, issuer, audience and the time window; raise Forbidden."""
    import jwt  # see issue_join_token

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            # The window is checked below against the server's clock, not PyJWT's.
            options={
                "require": ["exp", "nbf", "aud", "iss", "sub", "vid"],
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
        if now.timestamp() >= claims["exp"]:
            raise jwt.ExpiredSignatureError("after the visit window")
        if now.timestamp() < claims["nbf"]:
            raise jwt.ImmatureSignatureError("before the visit window")
        return JoinClaims(int(claims["vid"]), int(claims["sub"]), token_hash(token))
    except jwt.ExpiredSignatureError as exc:
        raise Forbidden("this join link has expired", code="join_link_expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise Forbidden(
            "this join link opens shortly before the visit", code="join_link_not_yet_valid"
        ) from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Forbidden("this join link is not valid", code="join_link_invalid") from exc


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
