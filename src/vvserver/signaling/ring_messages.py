"""Server messages of Visit now: rings, how they ended, availability and who may be rung.

Part of the ``AnyServerMessage`` union of ``protocol``; ``docs/protocol.md`` ("Visit now")
documents each with an example.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vvserver.signaling.message_base import ServerMessage

RingOutcome = Literal["accepted", "declined", "withdrawn", "missed"]


class RingMessage(ServerMessage):
    """An on-demand visit rings. ``direction``: ``incoming`` for the side rung (it may send
    ``ring_accept`` or ``ring_decline``), ``outgoing`` for the side that rang (it may send
    ``ring_decline`` to withdraw). A kiosk sees the visitor's first name and relationship
    only; ``pin_required``: the kiosk sends the resident's PIN with ``ring_accept``."""

    type: Literal["ring"] = "ring"
    visit_id: int
    direction: Literal["incoming", "outgoing"]
    started_by: Literal["visitor", "kiosk"]
    ring_until: datetime
    server_time: datetime
    minutes: int
    person_name: str
    facility_name: str
    visitor_first_name: str
    relationship: str
    privileged: bool
    pin_required: bool


class RingEndedMessage(ServerMessage):
    """The ring of ``visit_id`` is over: ``accepted`` (the visit starts: the kiosk gets
    ``visit_start``), ``declined`` by the side rung, ``withdrawn`` by the side that rang, or
    ``missed`` (nobody answered in time)."""

    type: Literal["ring_ended"] = "ring_ended"
    visit_id: int
    outcome: RingOutcome


class AvailabilityStateMessage(ServerMessage):
    """Visitor: whether this page now says "available now" (the answer to ``availability``)."""

    type: Literal["availability"] = "availability"
    available: bool


class AvailableVisitorOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    approval_id: int
    first_name: str
    relationship: str


class AvailableVisitorsMessage(ServerMessage):
    """Kiosk: the signed-in resident, and their approved visitors available now (the answer
    to ``resident_sign_in`` and ``get_available``)."""

    type: Literal["available_visitors"] = "available_visitors"
    person_id: int
    person_name: str
    minutes: int
    visitors: list[AvailableVisitorOut]
