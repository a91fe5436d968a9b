"""A headless participant: joins a visit as the visitor or the kiosk using only the public
protocol (``docs/protocol.md``), sends the pre-encoded test pattern without re-encoding, and
reports what it receives. Tests, benchmarks and kiosks without a browser use it.

    python -m vvserver.client.headless --server http://127.0.0.1:8080 --role kiosk \\
        --token k3.SECRET [--visit-id 12] [--pin 2468] [--seconds 600] [--ice-host 127.0.0.1]

Each message received is printed as one JSON line; a summary line ends the run. A kiosk
without ``--visit-id`` waits for ``visit_start``; where the facility asks for the person's
PIN, a kiosk given ``--pin`` confirms it when its offer is refused with ``pin_required``.
A peer connection that fails while the visit goes on is replaced by a new one (aiortc has no
ICE restart); a dropped socket is reopened with backoff and, as the web call page does, a
participant that was in the call offers again at its ``welcome`` (in a cluster the call may
now be on another node: docs/scaling.md); the run ends at ``visit_ended``, on an
authentication or PIN refusal, or after ``--seconds``. ``rejoin`` (the server holding
the call drains) opens a new socket at once and offers again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiortc import RTCIceServer

from vvserver.client.file_clip import UnusableMediaFile, clip_from_file
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip, load_clip

logger = logging.getLogger(__name__)

Role = Literal["visitor", "kiosk"]
MAX_BACKOFF_S = 30.0
RETRY_NOT_OPEN_S = 5.0
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
    video_frames: int = 0
    audio_frames: int = 0
    received: list[str] = field(default_factory=list)  # message types, in order


class HeadlessParticipant:
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
        self._peers: list[TestPeer] = []

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
        async with aiohttp.ClientSession() as session:
            while not self._finished:
                try:
                    async with session.ws_connect(self._url(), heartbeat=None) as ws:
                        backoff = 1.0
                        await self._serve(ws)
                        if ws.close_code == POLICY_VIOLATION:
                            return
                except aiohttp.ClientError as exc:
                    logger.warning(
                        "%s: socket failed (%s); retrying in %.0f s", self.role, exc, backoff
                    )
                if self._finished:
                    return
                if self._reopen:
                    self._reopen = False
                    continue
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "auth", "v": 1, "token": self.token})
        watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            while not ws.closed:
                deadline = self._end_deadline
                timeout = None if deadline is None else max(0.05, deadline - loop.time())
                try:
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    self._finished = True  # the visit is over; its end message never came
                    await ws.close()
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message: dict[str, Any] = json.loads(msg.data)
                self.report.received.append(str(message.get("type")))
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
            if self.role == "kiosk" and self.report.visit_id is not None and self.peer is None:
                await self._offer(ws)
            elif self.peer is not None and not self._finished:
                await self._offer(ws)  # a new socket while in the call: join again
        elif (kind == "visit_status" and self.peer is None) or (
            kind == "visit_start" and self.role == "kiosk" and not self._in_visit(message)
        ):
            self.report.visit_id = int(message["visit_id"])
            await self._offer(ws)
        elif kind == "answer" and self.peer is not None:
            if self.peer.pc.signalingState != "have-local-offer":
                logger.info("visit=%s answer ignored: no offer waiting", self.report.visit_id)
                return
            await self.peer.accept_answer(str(message["sdp"]))
            self.report.joins += 1
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
                await asyncio.sleep(RETRY_NOT_OPEN_S)
                await self._offer(ws)
            elif code in ("visit_over", "visit_ended", "visit_not_active"):
                # The call is over; `visit_ended` (with the reason) may still be on its way.
                self.report.end_reason = self.report.end_reason or code
                if self._end_deadline is None:
                    self._end_deadline = asyncio.get_running_loop().time() + END_MESSAGE_WAIT_S

    def _in_visit(self, message: dict[str, Any]) -> bool:
        """Already joined (or joining) this visit: a kiosk that offered at ``welcome``."""
        return self.peer is not None and int(message["visit_id"]) == self.report.visit_id

    async def _offer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        old = self.peer
        if old is not None:
            self._count_media()
            await old.close()
        clip = self.clip or await asyncio.to_thread(load_clip)
        self.clip = clip
        peer = self.peer = TestPeer(self.role, clip, ice_servers=self.ice_servers)
        self._peers.append(peer)
        sdp = await peer.create_offer()
        if self.peer is not peer or self._reopen:
            return  # replaced while gathering (e.g. ``rejoin``): this offer is stale
        offer: dict[str, Any] = {"type": "offer", "v": 1, "sdp": sdp}
        if self.report.visit_id is not None:
            offer["visit_id"] = self.report.visit_id
        await ws.send_json(offer)

    async def _rejoin_on_failure(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A failed peer connection is replaced while the visit goes on (no ICE restart)."""
        while not ws.closed and not self._finished:
            peer = self.peer
            if peer is None:
                return
            state = await peer.wait_for_state({"failed", "closed"}, within=1e9)
            if self._finished or self._reopen or ws.closed or peer is not self.peer:
                continue
            logger.info("%s: peer connection %s; joining again", self.role, state)
            await self._offer(ws)

    def _count_media(self) -> None:
        peer, self.peer = self.peer, None
        if peer is None:
            return
        for media in peer.received:
            if media is None:
                continue
            if media.kind == "video":
                self.report.video_frames += media.frames
            else:
                self.report.audio_frames += media.frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vvserver client join", description=__doc__)
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--role", choices=["visitor", "kiosk"], required=True)
    parser.add_argument("--token", required=True, help="join-link token or kiosk device token")
    parser.add_argument("--visit-id", type=int, help="kiosk: join this visit at once")
    parser.add_argument("--pin", help="kiosk: the person's PIN, where the facility asks for it")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--ice-host", action="append", help="ICE host address (repeatable)")
    parser.add_argument(
        "--media",
        type=Path,
        help="a WebM file (VP8 + Opus) to send, looped, without re-encoding; "
        "default: a generated test pattern",
    )
    args = parser.parse_args(argv)
    clip = None
    if args.media is not None:
        try:
            clip = clip_from_file(args.media)
        except (UnusableMediaFile, OSError) as exc:
            parser.error(str(exc))
    if args.ice_host:
        from vvserver.media.aiortc_hooks import set_ice_host_addresses

        set_ice_host_addresses(args.ice_host)

    def show(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    participant = HeadlessParticipant(
        args.server,
        role=args.role,
        token=args.token,
        visit_id=args.visit_id,
        on_message=show,
        pin=args.pin,
        clip=clip,
    )
    report = asyncio.run(participant.run(args.seconds))
    print(json.dumps({"summary": report.__dict__}), flush=True)
    return 1 if report.refused else 0


if __name__ == "__main__":
    sys.exit(main())
