"""The benchmark's clients: a relayed call through the public protocol, a monitoring officer,
and a direct peer-to-peer pair, all `TestPeer`s that send the pre-encoded clip and read what
they receive without decoding.

Delay: every sent clip frame's event-loop time is kept by its `ClipTrack` (by clip index);
the receiver identifies each frame by its bytes (SHA-256, no decoding) and subtracts. Both
ends of a call live in one load-generator process, so they share one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pyotp
from aiortc import RTCIceServer
from aiortc.stats import RTCInboundRtpStreamStats, RTCTransportStats
from scripts.benchcalls.world import BenchCall

from vvserver.client.peer import ClipTrack, PeerSection, ReceivedMedia, TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.frames import EncodedFrame

REPLY_TIMEOUT_S = 15.0
MONITOR_SECTIONS = (
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
)


class JoinRefused(RuntimeError):
    """The server answered a join with an error message."""


@dataclass
class Window:
    """The measuring window: delays count only while it is open."""

    open: bool = False


@dataclass
class DelayProbe:
    """Delays (ms) of one direction of one call: sender's clip track -> receiver's video."""

    window: Window
    sender: ClipTrack
    loop_seconds: float
    delays_ms: list[float] = field(default_factory=list)

    def __call__(self, frame: EncodedFrame, index: int | None) -> None:
        if not self.window.open or index is None:
            return
        sent = self.sender.last_sent_at.get(index)
        if sent is None:
            return
        delay = frame.arrival - sent
        if 0 <= delay < self.loop_seconds / 2:  # else: the frame of an earlier loop
            self.delays_ms.append(delay * 1000)


def probe(receiver: TestPeer, sender: TestPeer, window: Window, clip: Clip) -> DelayProbe:
    """Measure the delay of `sender`'s video as `receiver` gets it."""
    delay = DelayProbe(window, sender.sent_track("video"), len(clip.video) / clip.spec.fps)
    receiver.received_media("video").on_frame = delay
    return delay


@dataclass(frozen=True, slots=True)
class Traffic:
    """Cumulative counters of what a peer received (transport and RTP level)."""

    bytes_received: int = 0
    packets_received: int = 0
    rtp_packets_received: int = 0
    rtp_packets_lost: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.bytes_received + other.bytes_received,
            self.packets_received + other.packets_received,
            self.rtp_packets_received + other.rtp_packets_received,
            self.rtp_packets_lost + other.rtp_packets_lost,
        )

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.bytes_received - other.bytes_received,
            self.packets_received - other.packets_received,
            self.rtp_packets_received - other.rtp_packets_received,
            self.rtp_packets_lost - other.rtp_packets_lost,
        )


async def traffic(peer: TestPeer) -> Traffic:
    total = Traffic()
    for stats in (await peer.pc.getStats()).values():
        if isinstance(stats, RTCTransportStats):
            total += Traffic(stats.bytesReceived, stats.packetsReceived)
        elif isinstance(stats, RTCInboundRtpStreamStats):
            total += Traffic(0, 0, stats.packetsReceived, max(0, stats.packetsLost))
    return total


class SocketClient:
    """One participant's signaling socket: auth, offer, answer; then it keeps reading."""

    def __init__(self, session: aiohttp.ClientSession, url: str, role: str, token: str) -> None:
        self._session = session
        self._url = url
        self.role = role
        self._token = token
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def join(self, visit_id: int, clip: Clip) -> TestPeer:
        self._ws = ws = await self._session.ws_connect(self._url, heartbeat=None)
        await ws.send_json({"type": "auth", "v": 1, "token": self._token})
        welcome = await self._until(ws, "welcome")
        ice_servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in welcome["ice_servers"]
        ]
        peer = TestPeer(self.role, clip, ice_servers=ice_servers)
        offer = await peer.create_offer()
        await ws.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": offer})
        answer = await self._until(ws, "answer")
        await peer.accept_answer(str(answer["sdp"]))
        self._reader = asyncio.create_task(self._read_on(ws), name=f"{self.role} socket")
        return peer

    async def _until(self, ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise JoinRefused(f"{self.role}: socket closed waiting for {kind}")
                message: dict[str, Any] = json.loads(msg.data)
                if message.get("type") == kind:
                    return message
                if message.get("type") == "error":
                    raise JoinRefused(f"{self.role}: {message.get('code')}")

    @staticmethod
    async def _read_on(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:
            pass  # status, warnings, pings: read so the socket stays healthy

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()


class RelayedCall:
    """One visit: the visitor and the kiosk join through the server's sockets."""

    def __init__(
        self,
        call: BenchCall,
        server_url: str,
        session: aiohttp.ClientSession,
        kiosk_url: str | None = None,
    ) -> None:
        """``kiosk_url``: the kiosk signals through another node (a cluster benchmark)."""
        self.call = call
        ws_base = server_url.replace("http://", "ws://", 1)
        kiosk_base = (kiosk_url or server_url).replace("http://", "ws://", 1)
        self.visitor = SocketClient(session, f"{ws_base}/ws/visitor", "visitor", call.join_token)
        self.kiosk = SocketClient(session, f"{kiosk_base}/ws/kiosk", "kiosk", call.kiosk_token)
        self.peers: list[TestPeer] = []
        self.probes: list[DelayProbe] = []
        self.started_at = 0.0

    @property
    def label(self) -> str:
        return f"visit {self.call.visit_id}"

    async def join(self, clip: Clip, window: Window) -> None:
        self.started_at = asyncio.get_running_loop().time()
        visitor, kiosk = await asyncio.gather(
            self.visitor.join(self.call.visit_id, clip), self.kiosk.join(self.call.visit_id, clip)
        )
        self.peers = [visitor, kiosk]
        self.probes = [probe(kiosk, visitor, window, clip), probe(visitor, kiosk, window, clip)]

    def video(self) -> list[ReceivedMedia]:
        return [peer.received_media("video") for peer in self.peers]

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        await self.visitor.close()
        await self.kiosk.close()


class Officer:
    """The monitoring officer: signed in once, watches calls over HTTP offer/answer."""

    def __init__(self, session: aiohttp.ClientSession, server_url: str) -> None:
        self._session = session
        self._url = server_url
        self._headers: dict[str, str] = {}
        self.peers: list[TestPeer] = []

    async def sign_in(self, email: str, password: str, totp_secret: str) -> None:
        """Password, then the authenticator code (officers of the bench facility use MFA)."""
        async with self._session.post(
            f"{self._url}/api/auth/login", json={"email": email, "password": password}
        ) as resp:
            body = await resp.json()
        if resp.status == 202:
            # Cookies explicitly: the jar keeps none for an IP-address host (127.0.0.1).
            pending = resp.cookies["vv_mfa"].value
            async with self._session.post(
                f"{self._url}/api/auth/mfa",
                json={"code": pyotp.TOTP(totp_secret).now()},
                headers={"X-CSRF-Token": str(body["csrf_token"]), "Cookie": f"vv_mfa={pending}"},
            ) as resp:
                body = await resp.json()
        if resp.status != 200:
            raise JoinRefused(f"officer sign-in: {resp.status} {body}")
        cookie = resp.cookies["vv_session"].value
        self._headers = {"X-CSRF-Token": str(body["csrf_token"]), "Cookie": f"vv_session={cookie}"}
        self._session.cookie_jar.clear()

    async def monitor(self, visit_id: int, clip: Clip) -> TestPeer:
        peer = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
        self.peers.append(peer)
        async with self._session.post(
            f"{self._url}/api/visits/{visit_id}/monitor",
            json={"sdp": await peer.create_offer()},
            headers=self._headers,
        ) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise JoinRefused(f"monitor of visit {visit_id}: {resp.status} {body}")
        await peer.accept_answer(str(body["sdp"]))
        return peer

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


class DirectPair:
    """The reference: two peers of the same kind connected to each other, no server between."""

    def __init__(self, clip: Clip) -> None:
        self.a = TestPeer("direct-a", clip)
        self.b = TestPeer("direct-b", clip)
        self.probes: list[DelayProbe] = []

    async def connect(self, clip: Clip, window: Window) -> None:
        await self.a.accept_answer(await self.b.answer_offer(await self.a.create_offer()))
        self.probes = [probe(self.b, self.a, window, clip), probe(self.a, self.b, window, clip)]

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()
