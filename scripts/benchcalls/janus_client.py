"""A 1:1 call through Janus Gateway's videocall plugin (HTTP transport), recording on, with
the same `TestPeer`s as the vvserver calls: the C reference of the benchmark.

Each participant has its own Janus session and plugin handle: both register, the visitor
calls the kiosk with its offer, the kiosk answers Janus' offer, both ask for recording
(``set`` with ``record: true``). Janus' videocall plugin has no silent third party, so Janus
calls run without officer monitors.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import aiohttp
from scripts.benchcalls.clients import DelayProbe, JoinRefused, Window, probe

from vvserver.client.peer import ReceivedMedia, TestPeer
from vvserver.client.sample_clip import Clip

EVENT_TIMEOUT_S = 20.0
LONG_POLL_S = 30


class JanusHandle:
    """One Janus session with the videocall plugin attached; events come by long poll."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self._session_url = ""
        self._handle_url = ""
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(6)}
        async with self._http.post(url, json=body) as resp:
            reply: dict[str, Any] = await resp.json(content_type=None)
        if reply.get("janus") == "error":
            raise JoinRefused(f"janus: {reply.get('error')}")
        return reply

    async def open(self) -> None:
        session = await self._post(self._url, {"janus": "create"})
        self._session_url = f"{self._url}/{session['data']['id']}"
        handle = await self._post(
            self._session_url, {"janus": "attach", "plugin": "janus.plugin.videocall"}
        )
        self._handle_url = f"{self._session_url}/{handle['data']['id']}"
        self._poller = asyncio.create_task(self._poll(), name="janus long poll")

    async def _poll(self) -> None:
        while True:
            async with self._http.get(
                self._session_url, params={"maxev": "10"}, timeout=aiohttp.ClientTimeout(60)
            ) as resp:
                events = await resp.json(content_type=None)
            for event in events if isinstance(events, list) else [events]:
                if event.get("janus") == "event":
                    await self._events.put(event)

    async def send(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> None:
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        await self._post(self._handle_url, message)

    async def until(self, wanted: str) -> dict[str, Any]:
        """The next plugin event whose result.event is `wanted` (errors raise)."""
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while True:
                event = await self._events.get()
                data = event.get("plugindata", {}).get("data", {})
                if "error" in data:
                    raise JoinRefused(f"janus videocall: {data['error']}")
                if data.get("result", {}).get("event") == wanted:
                    return event

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._poller
        if self._session_url:
            with contextlib.suppress(aiohttp.ClientError, JoinRefused):
                await self._post(self._session_url, {"janus": "destroy"})


class JanusCall:
    """One 1:1 call through Janus' videocall plugin, both sides recorded."""

    def __init__(
        self, number: int, url: str, http: aiohttp.ClientSession, record_prefix: str
    ) -> None:
        self.number = number
        self.visitor = JanusHandle(http, url)
        self.kiosk = JanusHandle(http, url)
        self._record_prefix = record_prefix
        self.peers: list[TestPeer] = []
        self.probes: list[DelayProbe] = []
        self.started_at = 0.0

    @property
    def label(self) -> str:
        return f"janus call {self.number}"

    async def join(self, clip: Clip, window: Window) -> None:
        self.started_at = asyncio.get_running_loop().time()
        await asyncio.gather(self.visitor.open(), self.kiosk.open())
        names = (f"v{self.number}", f"k{self.number}")
        for handle, name in zip((self.visitor, self.kiosk), names, strict=True):
            await handle.send({"request": "register", "username": name})
            await handle.until("registered")
        visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
        self.peers = [visitor, kiosk]
        offer = await visitor.create_offer()
        await self.visitor.send(
            {"request": "call", "username": names[1]}, {"type": "offer", "sdp": offer}
        )
        incoming = await self.kiosk.until("incomingcall")
        answer = await kiosk.answer_offer(str(incoming["jsep"]["sdp"]))
        await self.kiosk.send({"request": "accept"}, {"type": "answer", "sdp": answer})
        accepted = await self.visitor.until("accepted")
        await visitor.accept_answer(str(accepted["jsep"]["sdp"]))
        for handle, name in zip((self.visitor, self.kiosk), names, strict=True):
            filename = f"{self._record_prefix}-{name}"
            await handle.send({"request": "set", "record": True, "filename": filename})
        self.probes = [probe(kiosk, visitor, window, clip), probe(visitor, kiosk, window, clip)]

    def video(self) -> list[ReceivedMedia]:
        return [peer.received_media("video") for peer in self.peers]

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        await self.visitor.close()
        await self.kiosk.close()
