"""Server messages for staff: the officers' live list (snapshot and updates), alerts, and
the answer to a ``flag``.

Part of the ``AnyServerMessage`` union of ``protocol``; ``docs/protocol.md`` documents each
with an example.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vvserver.signaling.call_messages import QualityOut
from vvserver.signaling.message_base import ServerMessage

MediaState = Literal["none", "joined", "connected", "disconnected"]


class LiveVisitOut(BaseModel):
    """One row of an officer's live list. Time left = ``end_at`` - the message's server_time."""

    model_config = ConfigDict(frozen=True)

    id: int
    state: str
    facility_id: int
    unit_name: str
    kiosk_id: int
    kiosk_name: str
    kiosk_online: bool
    person_name: str
    visitor_name: str
    start_at: datetime
    end_at: datetime
    privileged: bool
    visitor_connected: bool
    kiosk_connected: bool
    visitor_media: MediaState
    kiosk_media: MediaState
    visitor_quality: QualityOut | None
    kiosk_quality: QualityOut | None
    # Moments officers flagged so far (0 for privileged visits: they cannot be flagged).
    flags: int = 0
    # The call ledger per side: seconds lost so far (media stopped or dropped, until its
    # media returned; written every second), and whether the side is losing time now.
    visitor_lost_seconds: int = 0
    kiosk_lost_seconds: int = 0
    visitor_losing: bool = False
    kiosk_losing: bool = False
    # The room's media flow: the side's media reaches the relay now (it is in the call).
    visitor_media_flowing: bool = False
    kiosk_media_flowing: bool = False
    # The side joined but its media connection has not connected within the connect timeout
    # (cleared once it connects).
    visitor_cannot_connect: bool = False
    kiosk_cannot_connect: bool = False
    # Visit now: who started it ("visitor" or "kiosk"); null for a booked visit. A visit in
    # state "ringing" is waiting for its answer.
    on_demand: str | None = None


class LiveSnapshotMessage(ServerMessage):
    type: Literal["live_snapshot"] = "live_snapshot"
    server_time: datetime
    visits: list[LiveVisitOut]


class LiveUpdateMessage(ServerMessage):
    type: Literal["live_update"] = "live_update"
    server_time: datetime
    changed: list[LiveVisitOut]
    removed: list[int]


class AlertMessage(ServerMessage):
    """Officers: something needs attention now (``kiosk_offline``: a visit starts, no kiosk)."""

    type: Literal["alert"] = "alert"
    code: str
    visit_id: int
    kiosk_id: int
    message: str
    server_time: datetime


class VisitFlagOut(BaseModel):
    id: int
    visit_id: int
    at: datetime
    offset_s: float  # seconds from the visit's start
    note: str
    created_by: int


class FlaggedMessage(ServerMessage):
    """Officer: the ``flag`` was stored."""

    type: Literal["flagged"] = "flagged"
    flag: VisitFlagOut
