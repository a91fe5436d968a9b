"""Domain errors. The HTTP layer translates them to status codes in one middleware."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every expected failure; ``code`` is a stable machine-readable identifier."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    status = 422
    code = "invalid"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """Also used for objects outside the caller's scope, so their existence does not leak."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Locked(DomainError):
    status = 423
    code = "locked"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


class PayloadTooLarge(DomainError):
    status = 413
    code = "too_large"
