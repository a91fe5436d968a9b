"""The signaling protocol: every WebSocket message, as pydantic models validated once at the edge.

Client messages form one discriminated union keyed by ``type``; each carries the protocol
version ``v``. Server messages are built from the models below and serialised with
``dump``. ``docs/protocol.md`` documents each message with an example.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_ID = 2**31 - 1
MAX_SDP_CHARS = 60_000  # below the 64 KiB frame limit, with room for the JSON around it
MAX_TOKEN_CHARS = 2048
MAX_CANDIDATE_CHARS = 1024
MAX_REASON_CHARS = 1000
MAX_NOTE_CHARS = 1000
MAX_PIN_CHARS = 16

VisitId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]


class AuthMessage(ClientMessage):
    """First message of a socket opened without credentials: join-link or device token."""

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)


class PingMessage(ClientMessage):
    type: Literal["ping"]
    nonce: str | None = Field(default=None, max_length=64)


class OfferMessage(ClientMessage):
    """An SDP offer to join the visit's call (visitor or kiosk).

    ``visit_id`` is required for a kiosk and for a visitor signed in by cookie; a visitor who
    opened the socket with a join link may leave it out (the link names the visit).
    With ``candidates_complete`` false the server waits for trickled ``ice_candidate``
    messages until an empty candidate (end of candidates) before it answers.
    """

    type: Literal["offer"]
    visit_id: VisitId | None = None
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    candidates_complete: bool = True


class IceCandidateMessage(ClientMessage):
    """A trickled ICE candidate for the pending offer; ``candidate == ""`` ends the list."""

    type: Literal["ice_candidate"]
    candidate: str = Field(max_length=MAX_CANDIDATE_CHARS)
    sdp_mid: str | None = Field(default=None, max_length=32)
    sdp_mline_index: int | None = Field(default=None, ge=0, le=15)


class LeaveMessage(ClientMessage):
    """The participant hangs up; the visit goes on and it may rejoin until the end."""

    type: Literal["leave"]
    visit_id: VisitId | None = None


class ScheduleRequest(ClientMessage):
    """Kiosk: send me today's schedule again."""

    type: Literal["get_schedule"]


class MonitorMessage(ClientMessage):
    """Officer: watch a visit (unseen by the participants) with this SDP offer."""

    type: Literal["monitor"]
    visit_id: VisitId
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class StopMonitorMessage(ClientMessage):
    type: Literal["stop_monitor"]
    visit_id: VisitId


class TerminateMessage(ClientMessage):
    """Officer: end a visit for conduct; both sides are told it was ended by the facility."""

    type: Literal["terminate"]
    visit_id: VisitId
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class FlagMessage(ClientMessage):
    """Officer: flag the current moment of a started visit with a note (reply ``flagged``)."""

    type: Literal["flag"]
    visit_id: VisitId
    note: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class PinConfirmMessage(ClientMessage):
    """Kiosk: the person in custody's PIN, before the ``offer`` where the facility asks for it."""

    type: Literal["pin_confirm"]
    visit_id: VisitId
    pin: str = Field(min_length=1, max_length=MAX_PIN_CHARS)


AnyClientMessage = Annotated[
    AuthMessage
    | PingMessage
    | OfferMessage
    | IceCandidateMessage
    | LeaveMessage
    | ScheduleRequest
    | MonitorMessage
    | StopMonitorMessage
    | TerminateMessage
    | FlagMessage
    | PinConfirmMessage,
    Field(discriminator="type"),
]
CLIENT_MESSAGE = TypeAdapter[AnyClientMessage](AnyClientMessage)
CLIENT_MESSAGE_TYPES: tuple[str, ...] = (
    "auth",
    "ping",
    "offer",
    "ice_candidate",
    "leave",
    "get_schedule",
    "monitor",
    "stop_monitor",
    "terminate",
    "flag",
    "pin_confirm",
)


class ProtocolError(Exception):
    """A message that could not be understood; answered with a typed ``error`` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_message(text: str) -> AnyClientMessage:
    """Validate one text frame; ProtocolError with a stable code when it is not a message."""
    try:
        return CLIENT_MESSAGE.validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": "invalid"}
        kind = first["type"]
        if kind in ("json_invalid", "model_type", "dict_type"):
            raise ProtocolError("malformed_message", "a message is one JSON object") from None
        if kind == "union_tag_not_found":
            raise ProtocolError("malformed_message", "the message has no type") from None
        if kind == "union_tag_invalid":
            raise ProtocolError("unknown_type", "unknown message type") from None
        loc = ".".join(str(part) for part in first["loc"][1:]) or "message"
        if loc == "v":
            raise ProtocolError(
                "unsupported_version", f"protocol version {PROTOCOL_VERSION} is required"
            ) from None
        raise ProtocolError("invalid_message", f"{loc}: {first['msg']}") from None


# --- server messages ---------------------------------------------------------------------


class ServerMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class WelcomeMessage(ServerMessage):
    type: Literal["welcome"] = "welcome"
    role: Literal["visitor", "kiosk", "officer"]
    server_time: datetime
    ice_servers: list[IceServerOut]
    heartbeat_s: float | None


class ErrorMessage(ServerMessage):
    type: Literal["error"] = "error"
    code: str
    message: str
    # The type of the client message this answers, when there was one.
    ref: str | None = None


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
    visit_id: int


class ScheduledVisitOut(BaseModel):
    id: int
    state: str
    start: datetime  # facility-local time
    end: datetime
    start_utc: datetime
    end_utc: datetime
    person_name: str
    visitor_first_name: str
    minors_count: int
    privileged: bool
    pin_required: bool = False


class ScheduleMessage(ServerMessage):
    type: Literal["schedule"] = "schedule"
    kiosk_id: int
    kiosk_name: str
    date: date
    timezone: str
    server_time: datetime
    visits: list[ScheduledVisitOut]


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


class ParticipantMessage(ServerMessage):
    """Participants: a side's media connection changed (joined, connected, disconnected)."""

    type: Literal["participant"] = "participant"
    visit_id: int
    role: Literal["visitor", "kiosk"]
    state: Literal["joined", "connected", "disconnected"]


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


AnyServerMessage = (
    WelcomeMessage
    | ErrorMessage
    | PongMessage
    | AnswerMessage
    | AckMessage
    | ScheduleMessage
    | VisitStartMessage
    | VisitStatusMessage
    | VisitWarningMessage
    | VisitEndedMessage
    | ParticipantMessage
    | QualityMessage
    | LiveSnapshotMessage
    | LiveUpdateMessage
    | AlertMessage
    | FlaggedMessage
    | PinAcceptedMessage
)


def dump(message: AnyServerMessage) -> str:
    return message.model_dump_json()
