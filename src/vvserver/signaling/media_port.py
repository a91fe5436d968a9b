"""What signaling needs from the media service (``VisitMedia``), as a Protocol.

Signaling authorises the caller (join link, device token, staff session) and then hands the
SDP to this port. Every refusal of the port is a ``DomainError`` with a stable ``code``; the
socket answers it with a typed ``error`` message and stays open.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import Literal, Protocol

from vvserver.domain.accounts.principal import Principal
from vvserver.media.room_events import RoomEvent

logger = logging.getLogger(__name__)

ParticipantRole = Literal["visitor", "kiosk"]


class RoomEvents(Protocol):
    """A visit's media room as signaling sees it: its event stream (``VisitRoom``)."""

    @property
    def closed(self) -> bool: ...

    @property
    def participant_roles(self) -> tuple[ParticipantRole, ...]:
        """The sides whose media connection the room holds now."""
        ...

    def events(self) -> AsyncIterable[RoomEvent]:
        """A new subscription; it ends after ``VisitEnded``."""
        ...


class RoomLookup(Protocol):
    def get(self, visit_id: int) -> RoomEvents | None: ...


class MediaPort(Protocol):
    @property
    def rooms(self) -> RoomLookup:
        """The open rooms (``RoomRegistry``), for relaying their events to the clients."""
        ...

    def prepare(self) -> None:
        """A call is coming (a participant's socket opened for a visit): get ready for its
        offer now (the media stack loads at the first call, not at start). Returns at once."""
        ...

    async def join(self, visit_id: int, role: ParticipantRole, offer_sdp: str) -> str:
        """Answer a participant's offer; joining again is a reconnect."""
        ...

    async def leave(self, visit_id: int, role: ParticipantRole) -> None: ...

    async def monitor(
        self,
        visit_id: int,
        principal: Principal,
        offer_sdp: str,
        *,
        request_id: str | None = None,
    ) -> str: ...

    async def stop_monitor(
        self, visit_id: int, principal: Principal, *, request_id: str | None = None
    ) -> bool: ...

    async def terminate(
        self,
        visit_id: int,
        principal: Principal,
        reason: str,
        *,
        request_id: str | None = None,
    ) -> None: ...
