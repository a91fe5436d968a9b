"""The WebSocket edge shared by the three channels.

Order of events for one socket: Origin check (403 before the upgrade), upgrade with a 64 KiB
message limit, authentication (credentials of the upgrade request, else a first ``auth``
message within ``AUTH_TIMEOUT_S``; failures close with 1008), then a loop that handles one
message at a time, in order. Each text frame is validated once against the protocol union;
a bad one, a refused request (DomainError) or a rate-limited one gets a typed ``error``
reply and the socket stays usable. Nothing one socket sends reaches another visit's sockets.

Heartbeat: every ``signaling_heartbeat_s`` the loop sends a ``heartbeat`` message and a
WebSocket ping (browsers and WebSocket libraries answer pings by themselves). A socket from
which nothing at all arrives (no message, no pong) for ``DEAD_AFTER_HEARTBEATS`` intervals is
dead: it is closed without waiting for the peer, and the channel forgets it (a visitor's or
kiosk's signaling is gone; its media connection is left to the relay). Clients watch the
heartbeats the same way and open a new socket when they stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod

from aiohttp import WSMsgType, web

from vvserver.app_keys import HUB, REQUEST_ID, SERVICES, SOCKETS
from vvserver.domain.errors import DomainError
from vvserver.domain.services import Services
from vvserver.signaling.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    MAX_MESSAGE_BYTES,
    MAX_RATE_STRIKES,
    Connection,
    check_origin,
)
from vvserver.signaling.protocol import (
    AnyClientMessage,
    AuthMessage,
    HeartbeatMessage,
    PingMessage,
    PongMessage,
    ProtocolError,
    parse_client_message,
)

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
# A socket silent for this many heartbeat intervals is dead (clients use the same rule).
DEAD_AFTER_HEARTBEATS = 3
# How long closing a socket waits for the peer's close frame (a dead peer never sends one).
CLOSE_WAIT_S = 3.0


class AuthRefused(Exception):
    """The socket's credentials are missing or wrong: error reply, then close 1008."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Channel(ABC):
    """One kind of client. A new instance serves each socket."""

    role: str
    # The credential the socket authenticated with, set by ``authenticate_*``: a session
    # cookie's account and session key, or a kiosk's id.
    account_id: int | None = None
    session_hash: str | None = None
    kiosk_id: int | None = None

    def __init__(self, request: web.Request, services: Services) -> None:
        self.request = request
        self.services = services
        self.app = request.app

    @property
    def heartbeat_s(self) -> float:
        """How often this socket gets a ``heartbeat`` (and a ping); told in ``welcome``."""
        return self.services.settings.signaling_heartbeat_s

    @abstractmethod
    async def authenticate_upgrade(self) -> bool:
        """Use the upgrade request's credentials; False when it carried none."""

    @abstractmethod
    async def authenticate_message(self, message: AuthMessage) -> None:
        """Use the token of a first ``auth`` message (raise AuthRefused when it is wrong)."""

    @abstractmethod
    async def opened(self, conn: Connection) -> None:
        """Authenticated: send the initial messages, register with the hub."""

    async def check_credentials(self) -> None:
        """Raise AuthRefused when the socket's credential no longer holds (before each request)."""
        return None

    @abstractmethod
    async def handle(self, conn: Connection, message: AnyClientMessage) -> None:
        """One validated message (raise DomainError or ProtocolError to refuse it)."""

    async def tick(self, conn: Connection) -> None:
        """Called when ``next_tick`` (monotonic seconds) has come and no message arrived."""
        return None

    def next_tick(self) -> float | None:
        return None

    async def closed(self, conn: Connection) -> None:
        """The socket is gone (any reason); unregister."""
        return None


async def serve(request: web.Request, channel: Channel) -> web.StreamResponse:
    services = request.app[SERVICES]
    settings = services.settings
    check_origin(request, public_url=settings.public_url, behind_tls=settings.behind_tls)
    # Pings and pongs come to the loop (autoping off): any frame shows the peer is alive.
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=False, timeout=CLOSE_WAIT_S)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(reason="a WebSocket upgrade is required")
    try:
        await ws.prepare(request)
    except ConnectionError:  # the client gave up before the upgrade's answer went out
        logger.info(
            "socket %s (%s): client gone before the upgrade",
            request.get(REQUEST_ID, "-"),
            channel.role,
        )
        return ws
    conn = Connection(ws, request.get(REQUEST_ID, "-"), channel.role)
    request.app[SOCKETS].add(ws)
    hub = request.app[HUB]
    opened = False
    try:
        if not await _authenticate(channel, conn):
            return ws
        conn.account_id, conn.session_hash = channel.account_id, channel.session_hash
        conn.kiosk_id = channel.kiosk_id
        hub.track(conn)
        # A revocation between the credential check and ``track`` would go unseen: check again.
        try:
            await channel.check_credentials()
        except AuthRefused as refused:
            await conn.refuse(refused.code, refused.message)
            return ws
        await channel.opened(conn)
        opened = True
        await _message_loop(channel, conn)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("socket %s (%s) failed", conn.request_id, channel.role)
        await conn.error("internal_error", "the server could not go on with this socket")
    finally:
        hub.untrack(conn)
        if opened:
            try:
                await channel.closed(conn)
            except Exception:
                logger.exception("socket %s: cleanup failed", conn.request_id)
        await conn.close(ws.close_code or 1000, "")
    return ws


async def _authenticate(channel: Channel, conn: Connection) -> bool:
    try:
        if await channel.authenticate_upgrade():
            return True
        deadline = time.monotonic() + AUTH_TIMEOUT_S
        while True:
            try:
                msg = await conn.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                raise AuthRefused("auth_timeout", "send an auth message first") from None
            if not await _control_frame(conn, msg.type, msg.data):
                break
        if msg.type != WSMsgType.TEXT:
            await conn.close(CLOSE_POLICY, "auth_required")
            return False
        try:
            first = parse_client_message(msg.data)
        except ProtocolError as exc:
            raise AuthRefused("auth_required", f"send an auth message first ({exc.code})") from None
        if not isinstance(first, AuthMessage):
            raise AuthRefused("auth_required", "send an auth message first")
        await channel.authenticate_message(first)
        return True
    except AuthRefused as refused:
        logger.info("socket %s (%s) refused: %s", conn.request_id, channel.role, refused.code)
        await conn.refuse(refused.code, refused.message)
        return False


async def _control_frame(conn: Connection, kind: WSMsgType, data: object) -> bool:
    """Answer a ping, swallow a pong (both show the peer is alive); False for other frames."""
    if kind == WSMsgType.PING:
        conn.heard()
        await conn.pong(data if isinstance(data, bytes) else b"")
        return True
    if kind == WSMsgType.PONG:
        conn.heard()
        return True
    return False


class _Beat:
    """When the next heartbeat is due, and whether the peer has gone silent for too long."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.dead_after = interval * DEAD_AFTER_HEARTBEATS
        self.next_at = time.monotonic() + interval

    def deadline(self, conn: Connection, tick: float | None) -> float:
        due = min(self.next_at, conn.last_heard + self.dead_after)
        return due if tick is None else min(due, tick)


async def _due_work(channel: Channel, conn: Connection, beat: _Beat) -> bool:
    """Heartbeat, dead-peer check and the channel's timed work; False once the socket is dead."""
    now = time.monotonic()
    if now - conn.last_heard >= beat.dead_after:
        logger.info(
            "socket %s (%s): nothing heard for %.1f s; closing it as dead",
            conn.request_id,
            channel.role,
            now - conn.last_heard,
        )
        await conn.abort(CLOSE_GOING_AWAY, "heartbeat_timeout")
        return False
    if now >= beat.next_at:
        beat.next_at = now + beat.interval
        await conn.send(HeartbeatMessage(server_time=channel.services.clock.now()))
        await conn.ping()
    tick = channel.next_tick()
    if tick is not None and now >= tick:
        await channel.tick(conn)
    return True


async def _message_loop(channel: Channel, conn: Connection) -> None:
    ws = conn.ws
    beat = _Beat(channel.heartbeat_s)
    while not ws.closed:
        timeout = max(0.01, beat.deadline(conn, channel.next_tick()) - time.monotonic())
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            if not await _due_work(channel, conn, beat):
                return
            continue
        conn.heard()
        if await _control_frame(conn, msg.type, msg.data):
            pass
        elif msg.type == WSMsgType.TEXT:
            await _one_message(channel, conn, msg.data)
        elif msg.type == WSMsgType.BINARY:
            await conn.error("binary_not_supported", "messages are JSON text frames")
        else:
            return  # CLOSE, CLOSING, CLOSED, ERROR (e.g. a frame over 64 KiB: closed with 1009)
        # A busy socket still gets its heartbeats and timed work.
        if not await _due_work(channel, conn, beat):
            return


async def _one_message(channel: Channel, conn: Connection, text: str) -> None:
    if conn.revoked:
        return  # its credential was revoked: the hub is closing it
    if not conn.rate.take():
        conn.rate_strikes += 1
        if conn.rate_strikes >= MAX_RATE_STRIKES:
            await conn.error("rate_limited", "too many messages; closing")
            await conn.close(CLOSE_POLICY, "rate_limited")
            return
        await conn.error("rate_limited", "too many messages; slow down")
        return
    ref: str | None = None
    try:
        message = parse_client_message(text)
        ref = message.type
        if isinstance(message, PingMessage):
            await conn.send(
                PongMessage(nonce=message.nonce, server_time=channel.services.clock.now())
            )
        elif isinstance(message, AuthMessage):
            raise ProtocolError("already_authenticated", "this socket is already authenticated")
        else:
            await channel.check_credentials()
            if conn.revoked:
                return
            await channel.handle(conn, message)
    except ProtocolError as exc:
        await conn.error(exc.code, exc.message, ref)
    except DomainError as exc:
        details = exc.details if isinstance(exc.details, dict) else None
        await conn.error(exc.code, exc.message, ref, details)
    except AuthRefused as refused:
        await conn.refuse(refused.code, refused.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("socket %s: %s failed", conn.request_id, ref)
        await conn.error("internal_error", "the server could not handle this message", ref)
