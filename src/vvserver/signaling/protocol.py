"""The signaling protocol: every WebSocket message, as pydantic models validated once at the edge.

Client messages (``client_messages``, re-exported here) form one discriminated union keyed by
``type``, each with the protocol version ``v``. Server messages are the models below,
serialised with ``dump``. ``docs/protocol.md`` documents each message with an example.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vvserver.domain.visits.kiosk_day import KioskVisit
from vvserver.signaling.client_messages import (
    CLIENT_MESSAGE,
    CLIENT_MESSAGE_TYPES,
    MAX_CANDIDATE_CHARS,
    MAX_CHAT_CHARS,
    MAX_ID,
    MAX_NOTE_CHARS,
    MAX_PIN_CHARS,
    MAX_SDP_CHARS,
    MAX_TOKEN_CHARS,
    PROTOCOL_VERSION,
    AnyClientMessage,
    AuthMessage,
    AvailabilityMessage,
    AvailableRequest,
    ChatMessage,
    ClientMessage,
    FlagMessage,
    IceCandidateMessage,
    LeaveMessage,
    MonitorMessage,
    OfferMessage,
    PinConfirmMessage,
    PingMessage,
    ProtocolError,
    ResidentSignInMessage,
    ResidentSignOutMessage,
    RingAcceptMessage,
    RingDeclineMessage,
    RingVisitorMessage,
    ScheduleRequest,
    StopMonitorMessage,
    TerminateMessage,
    VisitId,
    parse_client_message,
)
from vvserver.signaling.message_base import ServerMessage
from vvserver.signaling.ring_messages import (
    AvailabilityStateMessage,
    AvailableVisitorsMessage,
    RingEndedMessage,
    RingMessage,
)

logger = logging.getLogger(__name__)


# --- server messages ---------------------------------------------------------------------


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class WelcomeMessage(ServerMessage):
    type: Literal["welcome"] = "welcome"
    role: Literal["visitor", "kiosk", "officer"]
    server_time: datetime
    ice_servers: list[IceServerOut]
    # The server sends ``heartbeat`` this often; silence for 3 of these means a dead socket.
    heartbeat_s: float
    # Visits in which the server holds this side's media connection now (visitor, kiosk): a
    # client with a peer connection for a visit not listed here re-offers at once.
    media_sessions: list[int] = Field(default_factory=list)
    # A peer connection that is not ``connected`` this long after its first offer: tell the
    # user, then offer again through TURN only (``iceTransportPolicy: "relay"``).
    connect_timeout_s: float = 15.0


class HeartbeatMessage(ServerMessage):
    """Every ``heartbeat_s`` on every socket: the server is there (clients watch for silence)."""

    type: Literal["heartbeat"] = "heartbeat"
    server_time: datetime


class ErrorMessage(ServerMessage):
    type: Literal["error"] = "error"
    code: str
    message: str
    # The type of the client message this answers, when there was one.
    ref: str | None = None
    # Machine-readable facts for the page (e.g. ``{"tries_left": 3}`` on ``wrong_pin``).
    details: dict[str, int | str] | None = None


class PongMessage(ServerMessage):
    type: Literal["pong"] = "pong"
    nonce: str | None
    server_time: datetime


class AnswerMessage(ServerMessage):
    type: Literal["answer"] = "answer"
    visit_id: int
    sdp: str


class AckMessage(ServerMessage):
    """A request without another reply (leave, stop_monitor, terminate) was carried out."""

    type: Literal["ok"] = "ok"
    ref: str
    visit_id: int | None = None  # none only for a request about no visit (resident_sign_out)


class ScheduleMessage(ServerMessage):
    type: Literal["schedule"] = "schedule"
    kiosk_id: int
    kiosk_name: str
    date: date
    timezone: str
    server_time: datetime
    visits: list[KioskVisit]


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


AnyServerMessage = (
    WelcomeMessage
    | HeartbeatMessage
    | ErrorMessage
    | PongMessage
    | AnswerMessage
    | AckMessage
    | ScheduleMessage
    | VisitStartMessage
    | VisitStatusMessage
    | VisitWarningMessage
    | VisitEndedMessage
    | RejoinMessage
    | ParticipantMessage
    | MediaNotConnectedMessage
    | QualityMessage
    | LiveSnapshotMessage
    | LiveUpdateMessage
    | AlertMessage
    | FlaggedMessage
    | PinAcceptedMessage
    | ChatOutMessage
    | RingMessage
    | RingEndedMessage
    | AvailabilityStateMessage
    | AvailableVisitorsMessage
)


def dump(message: AnyServerMessage) -> str:
    return message.model_dump_json()


__all__ = [
    "CLIENT_MESSAGE",
    "CLIENT_MESSAGE_TYPES",
    "MAX_CANDIDATE_CHARS",
    "MAX_CHAT_CHARS",
    "MAX_ID",
    "MAX_NOTE_CHARS",
    "MAX_PIN_CHARS",
    "MAX_SDP_CHARS",
    "MAX_TOKEN_CHARS",
    "PROTOCOL_VERSION",
    "AnyClientMessage",
    "AuthMessage",
    "AvailabilityMessage",
    "AvailableRequest",
    "ChatMessage",
    "ClientMessage",
    "FlagMessage",
    "IceCandidateMessage",
    "LeaveMessage",
    "MonitorMessage",
    "OfferMessage",
    "PinConfirmMessage",
    "PingMessage",
    "ProtocolError",
    "ResidentSignInMessage",
    "ResidentSignOutMessage",
    "RingAcceptMessage",
    "RingDeclineMessage",
    "RingVisitorMessage",
    "ScheduleRequest",
    "ServerMessage",
    "StopMonitorMessage",
    "TerminateMessage",
    "VisitId",
    "parse_client_message",
]
