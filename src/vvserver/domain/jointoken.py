"""Join links: signed tokens bound to one visit and one visitor, valid in the visit window.

HS256 JWTs checked with an algorithm allowlist and exp/nbf/aud/iss. Only the SHA-256 of the
current token is stored on the visit (rescheduling replaces it, so an old link stops working).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from vvserver.domain.errors import Forbidden
from vvserver.domain.secrets import new_token, token_hash

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
    token = jwt.encode(claims, secret, algorithm="HS256")
    return token, token_hash(token)


def verify_join_token(secret: bytes, token: str, now: datetime) -> JoinClaims:
    """Check signature, algorithm, issuer, audience and the time window; raise Forbidden."""
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
