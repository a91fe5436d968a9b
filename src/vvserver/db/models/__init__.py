"""Database tables. Plain typed ORM classes; no HTTP or pydantic here.

One module per area; every table (and ``Base``, whose metadata Alembic reads) is importable
from here.
"""

from __future__ import annotations

from vvserver.db.models.accounts import (
    Account,
    EmailToken,
    LoginFailures,
    MfaPendingLogin,
    MfaRecoveryCode,
    Session,
)
from vvserver.db.models.audit import AuditAnchorRow, AuditEntry
from vvserver.db.models.base import Base
from vvserver.db.models.notifications import Notification
from vvserver.db.models.organisation import Agency, Facility, HousingUnit, Kiosk, Person
from vvserver.db.models.recordings import Recording, RecordingHold
from vvserver.db.models.visit_access import Approval, Blackout, VisitorBan
from vvserver.db.models.visit_series import SeriesOccurrence, VisitSeries
from vvserver.db.models.visits import (
    ACTIVE_VISIT_STATES,
    Visit,
    VisitFlag,
    VisitMessage,
    VisitTransition,
)

__all__ = [
    "ACTIVE_VISIT_STATES",
    "Account",
    "Agency",
    "Approval",
    "AuditAnchorRow",
    "AuditEntry",
    "Base",
    "Blackout",
    "EmailToken",
    "Facility",
    "HousingUnit",
    "Kiosk",
    "LoginFailures",
    "MfaPendingLogin",
    "MfaRecoveryCode",
    "Notification",
    "Person",
    "Recording",
    "RecordingHold",
    "SeriesOccurrence",
    "Session",
    "Visit",
    "VisitFlag",
    "VisitMessage",
    "VisitSeries",
    "VisitTransition",
    "VisitorBan",
]
