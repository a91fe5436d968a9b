"""Signaling test fixtures: the app with the WebSocket routes and a media service double.

``CallLog`` stands in for ``VisitMedia`` (whose own tests drive real aiortc peers): it keeps
the requests signaling hands over and answers or refuses them the way the real one does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from tests.conftest import AiohttpClient
from tests.factories import World, add_visit
from vvserver.app import create_app
from vvserver.app_keys import HUB
from vvserver.db.models import Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import InvalidInput, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitStartEvent
from vvserver.domain.visits.join_links import issue_join_token
from vvserver.media.room_events import RoomEvent, VisitEnded
from vvserver.settings import Settings
from vvserver.signaling.media_port import ParticipantRole

Client = TestClient[web.Request, web.Application]
REPLY_TIMEOUT_S = 5.0
VALID_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)


class ScriptedRoom:
    """A media room whose events the test publishes (one subscriber: the hub's relay)."""

    def __init__(self) -> None:
        self.closed = False
        self.participant_roles: tuple[ParticipantRole, ...] = ()
        self._queue: asyncio.Queue[RoomEvent | None] = asyncio.Queue()

    def publish(self, event: RoomEvent) -> None:
        self._queue.put_nowait(event)
        if isinstance(event, VisitEnded):
            self.closed = True
            self._queue.put_nowait(None)

    async def _stream(self) -> AsyncIterator[RoomEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    def events(self) -> AsyncIterator[RoomEvent]:
        return self._stream()


@dataclass
class CallLog:
    """Records what signaling asks of the media service; refuses offers without ``m=``."""

    joins: list[tuple[int, ParticipantRole, str]] = field(default_factory=list)
    leaves: list[tuple[int, ParticipantRole]] = field(default_factory=list)
    monitors: list[tuple[int, str, str]] = field(default_factory=list)
    stops: list[tuple[int, str]] = field(default_factory=list)
    terminations: list[tuple[int, str, str]] = field(default_factory=list)
    # visit id -> facility id, for the staff scope check the real service does
    facilities: dict[int, int] = field(default_factory=dict)
    rooms: dict[int, ScriptedRoom] = field(default_factory=dict)
    # How often signaling said a call is coming (a participant's socket for a visit opened).
    prepared: int = 0

    def prepare(self) -> None:
        self.prepared += 1

    async def join(self, visit_id: int, role: ParticipantRole, offer_sdp: str) -> str:
        if "m=" not in offer_sdp:
            raise InvalidInput("the offer has no media", code="offer_no_media")
        self.joins.append((visit_id, role, offer_sdp))
        room = self.rooms.setdefault(visit_id, ScriptedRoom())
        room.participant_roles = (*(r for r in room.participant_roles if r != role), role)
        return f"answer for {role} of visit {visit_id}"

    async def leave(self, visit_id: int, role: ParticipantRole) -> None:
        self.leaves.append((visit_id, role))
        room = self.rooms.get(visit_id)
        if room is not None:
            room.participant_roles = tuple(r for r in room.participant_roles if r != role)

    def _scope(self, visit_id: int, principal: Principal) -> None:
        if self.facilities.get(visit_id) != principal.facility_id:
            raise NotFound("not found")

    async def monitor(
        self, visit_id: int, principal: Principal, offer_sdp: str, *, request_id: str | None = None
    ) -> str:
        self._scope(visit_id, principal)
        self.monitors.append((visit_id, principal.actor, offer_sdp))
        return f"monitor answer for visit {visit_id}"

    async def stop_monitor(
        self, visit_id: int, principal: Principal, *, request_id: str | None = None
    ) -> bool:
        self._scope(visit_id, principal)
        self.stops.append((visit_id, principal.actor))
        return True

    async def terminate(
        self, visit_id: int, principal: Principal, reason: str, *, request_id: str | None = None
    ) -> None:
        self._scope(visit_id, principal)
        self.terminations.append((visit_id, principal.actor, reason))


@pytest.fixture
def media() -> CallLog:
    return CallLog()


@pytest.fixture
async def ws_client(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services, media: CallLog
) -> Client:
    app = create_app(settings, services=services, workers=[])
    app[HUB].media = media  # the stand-in instead of the real media service
    return await aiohttp_client(app)


async def visit_with_link(
    services: Services,
    world: World,
    *,
    starts_in: timedelta = timedelta(minutes=5),
    kiosk: str = "a1-1",
    person: str = "pa1",
    visitor: str = "visitor",
) -> tuple[int, str]:
    """A visit and its current join link token."""
    visit_id = await add_visit(
        services, world, starts_in=starts_in, kiosk=kiosk, person=person, visitor=visitor
    )
    return visit_id, await join_link(services, visit_id)


async def receive(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next message, heartbeats left out (they come every couple of seconds)."""
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        while True:
            msg = await ws.receive()
            assert msg.type == WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
            data: dict[str, Any] = msg.json()
            if data["type"] != "heartbeat":
                return data


async def receive_until(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of this type (others, like periodic status, are skipped)."""
    for _ in range(50):
        data = await receive(ws)
        if data["type"] == kind:
            return data
    raise AssertionError(f"no {kind} message")


async def closed_with(ws: ClientWebSocketResponse) -> tuple[int | None, list[dict[str, Any]]]:
    """Read to the close; (close code, the messages before it)."""
    seen: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=REPLY_TIMEOUT_S)
        if msg.type == WSMsgType.TEXT:
            if msg.json()["type"] != "heartbeat":
                seen.append(msg.json())
            continue
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), msg
        return ws.close_code, seen


async def still_answers(ws: ClientWebSocketResponse) -> None:
    """The socket still works: a ping gets its pong."""
    await ws.send_json({"type": "ping", "v": 1, "nonce": "still-there"})
    assert (await receive_until(ws, "pong"))["nonce"] == "still-there"


async def start_event(services: Services, visit_id: int) -> VisitStartEvent:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return VisitStartEvent(
            visit_id=visit.id,
            facility_id=visit.facility_id,
            unit_id=visit.unit_id,
            kiosk_id=visit.kiosk_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
        )


async def join_link(services: Services, visit_id: int) -> str:
    """Issue the visit's join link (the previous one stops working); its token."""
    async with services.write() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        token, visit.join_token_hash = issue_join_token(
            services.secret,
            visit_id=visit.id,
            visitor_id=visit.visitor_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
            join_window_minutes=15,
            issued_at=services.clock.now(),
        )
    return token
