"""The signaling protocol: every WebSocket message, as pydantic models validated once at the edge.

Client messages (``client_messages``, re-exported here) form one discriminated union keyed by
``type``, each with the protocol version ``v``. Server messages are the models below and those
of ``call_messages``, ``staff_messages`` and ``ring_messages`` (re-exported here), serialised
with ``dump``. ``docs/protocol.md`` documents each message with an example.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from vvserver.domain.visits.kiosk_day import KioskVisit
from vvserver.signaling.call_messages import (
    ChatOutMessage,
    MediaNotConnectedMessage,
    ParticipantMessage,
    PinAcceptedMessage,
    QualityMessage,
    QualityOut,
    RejoinMessage,
    VisitEndedMessage,
    VisitStartMessage,
    VisitStatusMessage,
    VisitWarningMessage,
)
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
from vvserver.signaling.staff_messages import (
    AlertMessage,
    FlaggedMessage,
    LiveSnapshotMessage,
    LiveUpdateMessage,
    LiveVisitOut,
    MediaState,
    VisitFlagOut,
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
    "AlertMessage",
    "AnyClientMessage",
    "AuthMessage",
    "AvailabilityMessage",
    "AvailableRequest",
    "ChatMessage",
    "ChatOutMessage",
    "ClientMessage",
    "FlagMessage",
    "FlaggedMessage",
    "IceCandidateMessage",
    "LeaveMessage",
    "LiveSnapshotMessage",
    "LiveUpdateMessage",
    "LiveVisitOut",
    "MediaNotConnectedMessage",
    "MediaState",
    "MonitorMessage",
    "OfferMessage",
    "ParticipantMessage",
    "PinAcceptedMessage",
    "PinConfirmMessage",
    "PingMessage",
    "ProtocolError",
    "QualityMessage",
    "QualityOut",
    "RejoinMessage",
    "ResidentSignInMessage",
    "ResidentSignOutMessage",
    "RingAcceptMessage",
    "RingDeclineMessage",
    "RingVisitorMessage",
    "ScheduleRequest",
    "ServerMessage",
    "StopMonitorMessage",
    "TerminateMessage",
    "VisitEndedMessage",
    "VisitFlagOut",
    "VisitId",
    "VisitStartMessage",
    "VisitStatusMessage",
    "VisitWarningMessage",
    "parse_client_message",
]
