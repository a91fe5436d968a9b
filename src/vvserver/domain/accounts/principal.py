"""Who is calling: an account (visitor or staff) or a kiosk device, and what they may reach."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vvserver.domain.errors import Forbidden, NotFound

# "mfa_pending": a staff member whose password was right but whose second factor (or
# enrolment) is still missing; only the /api/auth/mfa endpoints accept it.
Role = Literal["visitor", "officer", "facility_admin", "agency_admin", "kiosk", "mfa_pending"]
MFA_PENDING = "mfa_pending"
STAFF_ROLES: frozenset[str] = frozenset({"officer", "facility_admin", "agency_admin"})
ADMIN_ROLES: frozenset[str] = frozenset({"facility_admin", "agency_admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    account_id: int | None = None
    kiosk_id: int | None = None
    agency_id: int | None = None
    facility_id: int | None = None
    email: str | None = None
    # Cookie sessions only: the session key (hash) and its CSRF token.
    session_hash: str | None = None
    csrf_token: str | None = None

    @property
    def actor(self) -> str:
        if self.kiosk_id is not None:
            return f"kiosk:{self.kiosk_id}"
        return f"{self.role}:{self.account_id}"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def require_account_id(self) -> int:
        if self.account_id is None:
            raise Forbidden("an account is required")
        return self.account_id

    def can_reach_facility(self, facility_id: int, agency_id: int) -> bool:
        if self.role == "agency_admin":
            return self.agency_id == agency_id
        if self.role in ("officer", "facility_admin", "kiosk"):
            return self.facility_id == facility_id
        return False

    def ensure_facility(self, facility_id: int, agency_id: int) -> None:
        """Staff outside the object's scope get 404, so other facilities' objects do not leak."""
        if not self.can_reach_facility(facility_id, agency_id):
            raise NotFound("not found")

    def ensure_admin_of(self, facility_id: int, agency_id: int) -> None:
        self.ensure_facility(facility_id, agency_id)
        if self.role not in ADMIN_ROLES:
            raise Forbidden("facility administrators only")


SYSTEM = Principal(role="agency_admin")
