"""A headless participant: joins a visit as the visitor or the kiosk using only the public
protocol (``docs/protocol.md``), sends the pre-encoded test pattern without re-encoding, and
reports what it receives. Tests, benchmarks and kiosks without a browser use it.

    vvserver client join --server http://127.0.0.1:8080 --role kiosk \\
        --token k3.SECRET [--visit-id 12] [--pin 2468] [--seconds 600] [--ice-host 127.0.0.1]

(the command line is ``headless_cli``; ``python -m vvserver.client.headless`` runs it too; its
peer connections are ``participant_peers``).

Each message received is printed as one JSON line (``--frames-every S`` adds a line with the
media frames received so far every S seconds); a summary line ends the run. A kiosk without
``--visit-id`` waits for ``visit_start``; where the facility asks for the person's PIN, a kiosk
given ``--pin`` confirms it when its offer is refused with ``pin_required``.

Recovery: the socket is dead when nothing (not even a ``heartbeat``) came for 3 of the
server's ``heartbeat_s``; it is dropped and a new one opened, every half second or so while a
call is on (with backoff up to 30 s otherwise), each attempt given ``CONNECT_TIMEOUT_S`` to
reach the server. On every ``welcome`` the client keeps its peer connection when the server
still holds its media (``media_sessions``) and re-offers at once when it does not (a restarted
server, a connection the relay dropped). A peer connection that fails while the visit goes on
is replaced by a new one (aiortc has no ICE restart). A peer connection not ``connected``
``welcome.connect_timeout_s`` (15 s) after its first answer is offered again through the
TURN servers alone (relay only), once; re-offers in between do not restart that clock.
Answers are matched to offers in order,
per socket. In a cluster the new socket may reach another node and the call another media
server (docs/scaling.md); ``rejoin`` (the server holding the call drains) opens a new socket
at once. The run ends at ``visit_ended``, on an authentication or PIN refusal, or after
``--seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiortc import RTCIceServer

from vvserver.client.participant_peers import ParticipantPeers
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip

logger = logging.getLogger(__name__)

Role = Literal["visitor", "kiosk"]
MAX_BACKOFF_S = 30.0
# While a call is on, a lost socket is tried again this often at most (with jitter).
IN_CALL_RETRY_S = 0.5
# One attempt to reach the server (a cut network drops the SYN: no error comes back), and
# the whole upgrade (a busy server may take a while to answer it).
CONNECT_TIMEOUT_S = 1.5
HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 0.5
# Until `welcome` says otherwise; silence for DEAD_AFTER_HEARTBEATS of them: a dead socket.
DEFAULT_HEARTBEAT_S = 2.0
DEAD_AFTER_HEARTBEATS = 3
RETRY_NOT_OPEN_S = 5.0
# Until `welcome` says otherwise: a peer connection not connected this long after its first
# answer is offered again through TURN alone.
DEFAULT_CONNECT_TIMEOUT_S = 15.0
# Kiosk PIN refusals that end the run: only a person (or staff) can fix them.
PIN_REFUSALS = frozenset({"pin_required", "wrong_pin", "pin_locked", "pin_not_set"})
POLICY_VIOLATION = 1008
END_MESSAGE_WAIT_S = 10.0


@dataclass
class ParticipantReport:
    role: Role
    visit_id: int | None = None
    end_reason: str | None = None
    end_message: str | None = None
    refused: str | None = None  # the error code of an authentication or PIN refusal
    joins: int = 0  # offers answered (more than one: reconnects)
    rejoins: int = 0  # ``rejoin`` messages (the server drained; a new socket followed at once)
    # Media not connected within the connect timeout (each wait counted once), and offers
    # made through TURN alone after one.
    connect_timeouts: int = 0
    relay_offers: int = 0
    sockets: int = 0  # sockets welcomed (more than one: the socket was reopened)
    video_frames: int = 0
    audio_frames: int = 0
    received: list[str] = field(default_factory=list)  # message types, in order


class HeadlessParticipant(ParticipantPeers):
    def __init__(
        self,
        server_url: str,
        *,
        role: Role,
        token: str,
        visit_id: int | None = None,
        clip: Clip | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        pin: str | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.pin = pin  # kiosk: the person's PIN, where the facility asks for it
        self.role = role
        self.token = token
        self.clip = clip
        self.on_message = on_message
        self.report = ParticipantReport(role=role, visit_id=visit_id)
        self.peer: TestPeer | None = None
        self.ice_servers: list[RTCIceServer] = []
        self._finished = False
        self._reopen = False  # ``rejoin``: a new socket now, without a backoff
        self._end_deadline: float | None = None
        self._retry_offer_at: float | None = None
        self.connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S
        # The running wait for this side's media to connect (loop time it ends), and whether
        # offers go through TURN alone (after a wait ran out).
        self._connect_deadline: float | None = None
        self._relay_only = False
        self._peers: list[TestPeer] = []
        # The peers whose offers this socket has sent and not yet seen answered, in order.
        self._offers: deque[TestPeer] = deque()

    def _url(self) -> str:
        base = self.server_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{base}/ws/{self.role}"

    async def run(self, max_seconds: float | None = None) -> ParticipantReport:
        try:
            async with asyncio.timeout(max_seconds):
                await self._run_sockets()
        except TimeoutError:
            logger.info("%s: time limit reached", self.role)
        finally:
            for peer in self._peers:
                await peer.close()
            self._count_media()
        return self.report

    async def _run_sockets(self) -> None:
        backoff = 1.0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._finished:
                ws = await self._connect(session)
                if ws is not None:
                    try:
                        if await self._serve(ws):
                            backoff = 1.0  # it worked until it was lost
                    finally:
                        await _close_quietly(ws)
                    if ws.close_code == POLICY_VIOLATION:
                        return
                if self._finished:
                    return
                if self._reopen:
                    self._reopen = False
                    continue
                await asyncio.sleep(self._retry_delay(backoff))
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _retry_delay(self, backoff: float) -> float:
        if self.peer is not None:  # a call is on: come back as soon as the network does
            return random.uniform(0.5, 1.0) * min(backoff, IN_CALL_RETRY_S)
        return random.uniform(0.75, 1.0) * backoff

    async def _connect(
        self, session: aiohttp.ClientSession
    ) -> aiohttp.ClientWebSocketResponse | None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                return await session.ws_connect(
                    self._url(), heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=0.5)
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            logger.info("%s: socket not opened (%s)", self.role, exc or type(exc).__name__)
            return None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Run one socket until it closes or goes silent; True when it was welcomed."""
        await ws.send_json({"type": "auth", "v": 1, "token": self.token})
        self._offers.clear()  # answers to offers sent on an older socket never come
        self._retry_offer_at = None
        watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        dead_after = DEFAULT_HEARTBEAT_S * DEAD_AFTER_HEARTBEATS
        heard = loop.time()
        welcomed = False
        try:
            while not ws.closed:
                deadlines = [
                    heard + dead_after,
                    self._end_deadline,
                    self._retry_offer_at,
                    self._connect_deadline,
                ]
                due = min(d for d in deadlines if d is not None)
                try:
                    msg = await ws.receive(timeout=max(0.05, due - loop.time()))
                except TimeoutError:
                    if not await self._timed(ws, loop.time() - heard >= dead_after):
                        break
                    continue
                heard = loop.time()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message: dict[str, Any] = json.loads(msg.data)
                kind = message.get("type")
                if kind == "heartbeat":
                    continue
                if kind == "welcome":
                    welcomed = True
                    self.report.sockets += 1
                    beat = message.get("heartbeat_s") or DEFAULT_HEARTBEAT_S
                    dead_after = float(beat) * DEAD_AFTER_HEARTBEATS
                self.report.received.append(str(kind))
                if self.on_message is not None:
                    self.on_message(message)
                await self._handle(ws, message)
                if watcher is None and self.peer is not None:
                    watcher = asyncio.create_task(self._rejoin_on_failure(ws))
                if self._finished or self._reopen:
                    await ws.close()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        return welcomed

    async def _timed(self, ws: aiohttp.ClientWebSocketResponse, silent: bool) -> bool:
        """A deadline of the receive loop came; False when the socket is to be dropped."""
        now = asyncio.get_running_loop().time()
        if self._end_deadline is not None and now >= self._end_deadline:
            self._finished = True  # the visit is over; its end message never came
            return False
        if silent:
            logger.info("%s: nothing heard from the server; opening a new socket", self.role)
            return False
        if self._retry_offer_at is not None and now >= self._retry_offer_at:
            self._retry_offer_at = None
            await self._offer(ws)
        if self._connect_deadline is not None and now >= self._connect_deadline:
            self._connect_deadline = None
            await self._connect_timed_out(ws)
        return True

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            peer = self.peer
            if peer is not None and peer.pc.connectionState != "connected":
                # A new socket, and no media with this peer: offer again below (or at
                # ``visit_status``) rather than wait on a connection no server holds.
                self._count_media()
                await peer.close()
            self.ice_servers = [
                RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
                for s in message["ice_servers"]
            ]
            timeout = message.get("connect_timeout_s")
            if isinstance(timeout, int | float) and timeout > 0:
                self.connect_timeout_s = float(timeout)
            if self.peer is not None:
                # Back on a new socket during a call: keep the peer connection only when the
                # server still holds its other end (after a restart it does not).
                held = self.report.visit_id in message.get("media_sessions", [])
                if not held or self.peer.pc.connectionState in ("failed", "closed"):
                    logger.info("%s: the server holds no media of ours; offering", self.role)
                    await self._offer(ws)
            elif self.role == "kiosk" and self.report.visit_id is not None:
                await self._offer(ws)
            elif self.peer is not None and not self._finished:
                await self._offer(ws)  # a new socket while in the call: join again
        elif (kind == "visit_status" and self.peer is None) or (
            kind == "visit_start" and self.role == "kiosk" and not self._in_visit(message)
        ):
            self.report.visit_id = int(message["visit_id"])
            await self._offer(ws)
        elif kind == "answer":
            offered = self._offers.popleft() if self._offers else None
            if (
                offered is None
                or offered is not self.peer
                or offered.pc.signalingState != "have-local-offer"
            ):
                logger.info("visit=%s answer ignored: not our latest offer", self.report.visit_id)
                return
            await offered.accept_answer(str(message["sdp"]))
            self.report.joins += 1
            if self._connect_deadline is None and offered.pc.connectionState != "connected":
                # ICE and DTLS start now; one wait however often it offers again meanwhile.
                loop = asyncio.get_running_loop()
                self._connect_deadline = loop.time() + self.connect_timeout_s
        elif kind == "visit_ended":
            self.report.end_reason = str(message["reason"])
            self.report.end_message = str(message["message"])
            self._finished = True
        elif kind == "rejoin" and int(message["visit_id"]) == self.report.visit_id:
            # The server holding the call drains: a new socket, then a new offer (as after a
            # restart: the kiosk at ``welcome``, the visitor at ``visit_status``).
            self.report.rejoins += 1
            peer = self.peer
            self._count_media()
            if peer is not None:
                await peer.close()
            self._reopen = True
        elif kind == "pin_accepted":
            await self._offer(ws)
        elif kind == "error":
            code = str(message.get("code"))
            if message.get("ref") == "offer" and self._offers:
                self._offers.popleft()  # this offer gets no answer
            if code == "pin_required" and self.pin is not None:
                await ws.send_json(
                    {
                        "type": "pin_confirm",
                        "v": 1,
                        "visit_id": self.report.visit_id,
                        "pin": self.pin,
                    }
                )
            elif code in PIN_REFUSALS:
                self.report.refused = code  # no PIN, or not the right one: a person must act
                self._finished = True
            elif message.get("ref") is None and code not in ("rate_limited", "internal_error"):
                self.report.refused = code  # an authentication refusal: 1008 follows
                self._finished = True
            elif code == "node_draining" and message.get("ref") == "offer":
                # The server is stopping: the offer is dropped; the next socket offers again.
                peer = self.peer
                self._count_media()
                if peer is not None:
                    await peer.close()
            elif code == "visit_not_open_yet":
                self._retry_offer_at = asyncio.get_running_loop().time() + RETRY_NOT_OPEN_S
            elif code in ("visit_over", "visit_ended", "visit_not_active"):
                # The call is over; `visit_ended` (with the reason) may still be on its way.
                self.report.end_reason = self.report.end_reason or code
                if self._end_deadline is None:
                    self._end_deadline = asyncio.get_running_loop().time() + END_MESSAGE_WAIT_S

    def _in_visit(self, message: dict[str, Any]) -> bool:
        """Already joined (or joining) this visit: a kiosk that offered at ``welcome``."""
        return self.peer is not None and int(message["visit_id"]) == self.report.visit_id


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close a socket without waiting long for a peer that may be gone."""
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError, aiohttp.ClientError):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await ws.close()


if __name__ == "__main__":
    from vvserver.client.headless_cli import main

    sys.exit(main())
