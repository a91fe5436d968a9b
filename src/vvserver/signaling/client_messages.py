"""Client messages of the signaling protocol: one discriminated union keyed by ``type``.

Validated once at the edge (``parse_client_message``); ``docs/protocol.md`` has an example of
each. Re-exported by ``vvserver.signaling.protocol``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from vvserver.visits_live import MAX_REASON_CHARS

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_ID = 2**31 - 1
MAX_SDP_CHARS = 60_000  # below the 64 KiB frame limit, with room for the JSON around it
MAX_TOKEN_CHARS = 2048
MAX_CANDIDATE_CHARS = 1024
MAX_NOTE_CHARS = 1000
MAX_PIN_CHARS = 16
MAX_CHAT_CHARS = 1000
BOOKING_NUMBER_PATTERN = r"^[A-Za-z0-9][\w./-]*$"

VisitId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _exact_int(value: object) -> object:
    """``true`` and ``1.0`` equal 1 in Python: the version must be the JSON integer itself."""
    if type(value) is not int:
        raise ValueError("the version is an integer")
    return value


class ClientMessage(BaseModel):
    """Validated strictly: no coercion (``"5"`` is not 5, ``1`` is not ``true``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Annotated[Literal[1], BeforeValidator(_exact_int)]


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


class ChatMessage(ClientMessage):
    """Visitor or kiosk: a text chat message to the other side, while the visit is live.

    A kiosk may name the visit; without ``visit_id`` the message goes to its live visit.
    """

    type: Literal["chat"]
    text: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)
    visit_id: VisitId | None = None


class AvailabilityMessage(ClientMessage):
    """Visitor, on a page's socket without a visit: "available now" on or off (Visit now).

    While on, the visitor's approved residents may ring this page from an idle kiosk.
    """

    type: Literal["availability"]
    available: bool


class RingAcceptMessage(ClientMessage):
    """The side rung (kiosk or visitor) accepts the ring of an on-demand visit.

    A kiosk whose unit asks for the PIN sends it here (or confirms it first with
    ``pin_confirm``); visitors send no PIN.
    """

    type: Literal["ring_accept"]
    visit_id: VisitId
    pin: str | None = Field(default=None, min_length=1, max_length=MAX_PIN_CHARS)


class RingDeclineMessage(ClientMessage):
    """Decline a ring (the side rung) or withdraw it (the side that rang)."""

    type: Literal["ring_decline"]
    visit_id: VisitId


class ResidentSignInMessage(ClientMessage):
    """Kiosk: the resident who wants to ring a visitor (their PIN where the unit asks for it)."""

    type: Literal["resident_sign_in"]
    booking_number: str = Field(min_length=1, max_length=64, pattern=BOOKING_NUMBER_PATTERN)
    pin: str | None = Field(default=None, min_length=1, max_length=MAX_PIN_CHARS)


class AvailableRequest(ClientMessage):
    """Kiosk: the signed-in resident's visitors available now, again."""

    type: Literal["get_available"]


class RingVisitorMessage(ClientMessage):
    """Kiosk: the signed-in resident rings this approved visitor (from ``available_visitors``)."""

    type: Literal["ring_visitor"]
    approval_id: VisitId


class ResidentSignOutMessage(ClientMessage):
    """Kiosk: the resident is done (also after ``RESIDENT_IDLE_S`` without a request)."""

    type: Literal["resident_sign_out"]


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
    | PinConfirmMessage
    | ChatMessage
    | AvailabilityMessage
    | RingAcceptMessage
    | RingDeclineMessage
    | ResidentSignInMessage
    | AvailableRequest
    | RingVisitorMessage
    | ResidentSignOutMessage,
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
    "chat",
    "availability",
    "ring_accept",
    "ring_decline",
    "resident_sign_in",
    "get_available",
    "ring_visitor",
    "resident_sign_out",
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
