"""`ParticipantPeers`: the peer connections of a `HeadlessParticipant` (mixed into it).

An offer makes a new peer connection (closing the one before); a peer connection that fails
while the visit goes on is replaced, and one not connected within the connect timeout is
offered again through TURN alone, once. What each peer connection received is added to the
report when it is replaced or closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import aiohttp

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip, load_clip

if TYPE_CHECKING:
    from aiortc import RTCIceServer

    from vvserver.client.headless import ParticipantReport, Role

# The participant's logger: these lines read as they did when this was part of headless.py.
logger = logging.getLogger("vvserver.client.headless")


class ParticipantPeers:
    """Offers and peer connections; `HeadlessParticipant.__init__` sets the state below."""

    role: Role
    report: ParticipantReport
    clip: Clip | None
    peer: TestPeer | None
    ice_servers: list[RTCIceServer]
    connect_timeout_s: float
    _finished: bool
    _reopen: bool
    _connect_deadline: float | None
    _relay_only: bool
    _peers: list[TestPeer]
    _offers: deque[TestPeer]

    def frames_received(self) -> tuple[int, int]:
        """(video, audio) frames received so far, over every peer connection."""
        video, audio = self.report.video_frames, self.report.audio_frames
        for media in self.peer.received if self.peer is not None else ():
            if media is not None and media.kind == "video":
                video += media.frames
            elif media is not None:
                audio += media.frames
        return video, audio

    async def _connect_timed_out(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The wait for media ran out: offer through TURN alone (once), or say it failed."""
        peer = self.peer
        if peer is None or self._finished or peer.pc.connectionState == "connected":
            return
        self.report.connect_timeouts += 1
        has_turn = any(
            url.lower().startswith(("turn:", "turns:"))
            for server in self.ice_servers
            for url in ([server.urls] if isinstance(server.urls, str) else server.urls)
        )
        if self._relay_only or not has_turn:
            logger.warning(
                "visit=%s %s: media not connected after %.0f s%s",
                self.report.visit_id,
                self.role,
                self.connect_timeout_s,
                "" if has_turn else " (no TURN server to try)",
            )
            return
        logger.warning(
            "visit=%s %s: media not connected after %.0f s; offering through TURN only",
            self.report.visit_id,
            self.role,
            self.connect_timeout_s,
        )
        self._relay_only = True
        self.report.relay_offers += 1
        await self._offer(ws)

    async def _offer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        old = self.peer
        if old is not None:
            self._count_media()
            await old.close()
        clip = self.clip or await asyncio.to_thread(load_clip)
        self.clip = clip
        peer = self.peer = TestPeer(
            self.role, clip, ice_servers=self.ice_servers, relay_only=self._relay_only
        )

        @peer.pc.on("connectionstatechange")
        def connected() -> None:
            if peer is self.peer and peer.pc.connectionState == "connected":
                self._connect_deadline = None  # the wait is over

        self._peers.append(peer)
        sdp = await peer.create_offer()
        if self.peer is not peer or self._reopen:
            return  # replaced while gathering (e.g. ``rejoin``): this offer is stale
        offer: dict[str, Any] = {"type": "offer", "v": 1, "sdp": sdp}
        if self.report.visit_id is not None:
            offer["visit_id"] = self.report.visit_id
        self._offers.append(self.peer)
        with contextlib.suppress(ConnectionError, RuntimeError):
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
