"""Server messages of a visit's call, to its participants: its start, status, warnings and
end, the other side's media, quality, the kiosk's PIN and chat.

Part of the ``AnyServerMessage`` union of ``protocol``; ``docs/protocol.md`` documents each
with an example.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vvserver.signaling.message_base import ServerMessage


class VisitStartMessage(ServerMessage):
    """Kiosk: the visit's slot has started; join it now (send an ``offer``)."""

    type: Literal["visit_start"] = "visit_start"
    visit_id: int
    start_at: datetime
    end_at: datetime
    server_time: datetime
    pin_required: bool = False  # send ``pin_confirm`` before the ``offer``


class VisitStatusMessage(ServerMessage):
    """Visitor: where the visit stands (waiting room), from the server's clock."""

    type: Literal["visit_status"] = "visit_status"
    visit_id: int
    state: str
    start_at: datetime
    end_at: datetime
    server_time: datetime
    seconds_to_start: int
    seconds_left: int
    kiosk_online: bool
    end_reason: str | None
    # Attorney/clergy visits: never monitored or recorded (the page tells the visitor so).
    privileged: bool = False
    # Whom the visitor is visiting ("Luis will join at 7:55 PM"): the person's first name.
    person_first_name: str = ""
    # The call ledger so far (final once ``state`` is an end state), and the facility's credit.
    connected_seconds: int = 0
    lost_seconds: int = 0
    visitor_lost_seconds: int = 0
    kiosk_lost_seconds: int = 0
    credit_flag: bool = False


class VisitWarningMessage(ServerMessage):
    """Participants: the visit ends in ``seconds_left`` seconds."""

    type: Literal["visit_warning"] = "visit_warning"
    visit_id: int
    seconds_left: int


class VisitEndedMessage(ServerMessage):
    """Participants: the call is over. ``reason``: time_up, terminated, closed, failed."""

    type: Literal["visit_ended"] = "visit_ended"
    visit_id: int
    reason: str
    message: str


class RejoinMessage(ServerMessage):
    """Participants: the server holding the call is stopping; re-join now.

    Open a new socket (it lands on another node, or on this server once it is back) and send a
    new ``offer``: the same visit, on the same clock; the seconds in between count as lost.
    """

    type: Literal["rejoin"] = "rejoin"
    visit_id: int
    reason: Literal["server_draining"] = "server_draining"
    message: str


class ParticipantMessage(ServerMessage):
    """Participants: a side's media connection changed (joined, connected, disconnected)."""

    type: Literal["participant"] = "participant"
    visit_id: int
    role: Literal["visitor", "kiosk"]
    state: Literal["joined", "connected", "disconnected"]


class MediaNotConnectedMessage(ServerMessage):
    """Participants: ``role``'s media connection (ICE/DTLS) has not connected ``waited_s``
    seconds after it joined (its network may block UDP). Staff got an ``alert``."""

    type: Literal["media_not_connected"] = "media_not_connected"
    visit_id: int
    role: Literal["visitor", "kiosk"]
    waited_s: float
    message: str


class QualityOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    video_fps_in: float
    bitrate_in_bps: float
    packets_lost_in: int
    round_trip_time_s: float | None


class QualityMessage(ServerMessage):
    """Participants: what the relay receives from one side (every few seconds)."""

    type: Literal["quality"] = "quality"
    visit_id: int
    role: Literal["visitor", "kiosk"]
    quality: QualityOut


class PinAcceptedMessage(ServerMessage):
    """Kiosk: the PIN was right; send the ``offer`` for this visit now."""

    type: Literal["pin_accepted"] = "pin_accepted"
    visit_id: int


class ChatOutMessage(ServerMessage):
    """A chat message of a live visit, to both sides and to staff following it."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, populate_by_name=True)

    type: Literal["chat"] = "chat"
    id: int
    visit_id: int
    sender: Literal["visitor", "kiosk"] = Field(alias="from")
    text: str
    at: datetime
