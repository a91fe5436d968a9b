"""Visit now without a browser: ring, accept and decline over the public protocol and API.

    vvserver client ring --server URL --role kiosk --token k3.SECRET --answer accept [--pin P]
    vvserver client ring --server URL --role kiosk --token k3.SECRET --resident A-1001 \\
        [--pin P] --call Maria [--withdraw-after 5]
    vvserver client ring --server URL --role visitor --email E --password P --answer decline
    vvserver client ring --server URL --role visitor --email E --password P --visit-now 7

A kiosk answers the next ring (``--answer``) or signs a resident in and rings the visitor
named ``--call`` (first name, as the kiosk sees it). A visitor signs in, opens their page on
standby with "available now" on and answers the next ring, or presses Visit now for a person
(``--visit-now PERSON_ID``). ``--withdraw-after S`` withdraws an unanswered ring after S
seconds. Each message is printed as a JSON line, then ``{"summary": {...}}`` with the visit
and how the ring ended; with ``--join`` an accepted ring goes on into the call (the headless
participant) for ``--seconds``. Exit code 1 when the ring was refused or not accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from yarl import URL

from vvserver.client.headless import HeadlessParticipant

logger = logging.getLogger(__name__)

Printer = Callable[[dict[str, Any]], None]


@dataclass
class RingReport:
    role: Literal["visitor", "kiosk"]
    visit_id: int | None = None
    outcome: str | None = None  # accepted, declined, withdrawn, missed
    error: str | None = None  # the code of a refusal
    join_token: str | None = None  # visitor: the visit's join link token
    received: list[str] = field(default_factory=list)


@dataclass
class RingPlan:
    role: Literal["visitor", "kiosk"]
    answer: Literal["accept", "decline"] | None = None
    call: str | None = None  # kiosk: the visitor's first name to ring
    resident: str | None = None  # kiosk: the resident's booking number
    visit_now: int | None = None  # visitor: the person to ring
    pin: str | None = None
    withdraw_after: float | None = None


class RingFailed(Exception):
    pass


class Ringer:
    def __init__(
        self,
        server_url: str,
        plan: RingPlan,
        *,
        token: str | None = None,
        email: str | None = None,
        password: str | None = None,
        on_message: Printer | None = None,
    ) -> None:
        self.server = server_url.rstrip("/")
        self.plan = plan
        self.token = token
        self.email, self.password = email, password
        self.on_message = on_message
        self.report = RingReport(role=plan.role)
        self.csrf = ""

    async def run(self, max_seconds: float = 120.0) -> RingReport:
        jar = aiohttp.CookieJar(unsafe=True)  # servers on an IP address, e.g. 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            try:
                async with asyncio.timeout(max_seconds):
                    await self._run(http)
            except RingFailed as exc:
                self.report.error = self.report.error or str(exc)
            except TimeoutError:
                self.report.error = self.report.error or "timeout"
        return self.report

    async def _run(self, http: aiohttp.ClientSession) -> None:
        plan = self.plan
        if plan.role == "kiosk":
            headers = {"Authorization": f"Bearer {self.token}"}
            async with http.ws_connect(self._ws("/ws/kiosk"), headers=headers) as ws:
                await self._until(ws, "schedule")
                if plan.call is not None:
                    await self._kiosk_call(ws)
                else:
                    await self._answer_next(ws)
            return
        await self._sign_in(http)
        if plan.visit_now is not None:
            booked = await self._api(http, "POST", f"/api/persons/{plan.visit_now}/visit-now")
            self.report.visit_id = int(booked["id"])
            self.report.join_token = str(booked["join_url"]).rsplit("/", 1)[-1]
            path = f"/ws/visitor?visit_id={self.report.visit_id}"
            async with http.ws_connect(self._ws(path), headers=self._cookie(http)) as ws:
                await self._until(ws, "welcome")
                await self._wait_end(ws)
            return
        async with http.ws_connect(self._ws("/ws/visitor"), headers=self._cookie(http)) as ws:
            await self._until(ws, "welcome")
            await self._send(ws, type="availability", available=True)
            await self._until(ws, "availability")
            await self._answer_next(ws)
        if self.report.outcome == "accepted" and self.report.visit_id is not None:
            link = await self._api(http, "POST", f"/api/visits/{self.report.visit_id}/join-link")
            self.report.join_token = str(link["join_url"]).rsplit("/", 1)[-1]

    async def _kiosk_call(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        plan = self.plan
        sign_in: dict[str, Any] = {"type": "resident_sign_in", "booking_number": plan.resident}
        if plan.pin is not None:
            sign_in["pin"] = plan.pin
        await self._send(ws, **sign_in)
        listed = await self._until(ws, "available_visitors")
        wanted = (plan.call or "").casefold()
        match = [v for v in listed["visitors"] if str(v["first_name"]).casefold() == wanted]
        if not match:
            raise RingFailed("visitor_not_available")
        await self._send(ws, type="ring_visitor", approval_id=match[0]["approval_id"])
        self.report.visit_id = int((await self._until(ws, "ok"))["visit_id"])
        await self._wait_end(ws)

    async def _answer_next(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        ring = await self._until(ws, "ring", lambda m: m["direction"] == "incoming")
        visit_id = self.report.visit_id = int(ring["visit_id"])
        if self.plan.answer == "accept":
            accept: dict[str, Any] = {"type": "ring_accept", "visit_id": visit_id}
            if self.plan.pin is not None and self.plan.role == "kiosk":
                accept["pin"] = self.plan.pin
            await self._send(ws, **accept)
        else:
            await self._send(ws, type="ring_decline", visit_id=visit_id)
        await self._wait_end(ws, withdraw=False)

    async def _wait_end(
        self, ws: aiohttp.ClientWebSocketResponse, *, withdraw: bool = True
    ) -> None:
        visit_id = self.report.visit_id
        after = self.plan.withdraw_after if withdraw else None
        try:
            async with asyncio.timeout(after):
                ended = await self._until(ws, "ring_ended", lambda m: m["visit_id"] == visit_id)
        except TimeoutError:
            await self._send(ws, type="ring_decline", visit_id=visit_id)
            ended = await self._until(ws, "ring_ended", lambda m: m["visit_id"] == visit_id)
        self.report.outcome = str(ended["outcome"])

    async def _until(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        kind: str,
        match: Callable[[dict[str, Any]], bool] = lambda _m: True,
    ) -> dict[str, Any]:
        """The next message of ``kind`` (and ``match``); an error reply fails the run."""
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RingFailed("socket_closed")
            message: dict[str, Any] = json.loads(msg.data)
            if message.get("type") == "heartbeat":
                continue
            self.report.received.append(str(message.get("type")))
            if self.on_message is not None:
                self.on_message(message)
            if message.get("type") == "error":
                self.report.error = str(message.get("code"))
                raise RingFailed(self.report.error)
            if message.get("type") == kind and match(message):
                return message

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, **message: Any) -> None:
        await ws.send_json({"v": 1, **message})

    async def _sign_in(self, http: aiohttp.ClientSession) -> None:
        body = {"email": self.email, "password": self.password}
        session = await self._api(http, "POST", "/api/auth/login", json=body)
        self.csrf = str(session["csrf_token"])

    async def _api(
        self, http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        async with http.request(method, self.server + path, headers=headers, **kwargs) as resp:
            data: dict[str, Any] = await resp.json()
            if self.on_message is not None:
                self.on_message({"http": f"{method} {path}", "status": resp.status, "body": data})
            if resp.status >= 400:
                self.report.error = str(data.get("error", {}).get("code", resp.status))
                raise RingFailed(self.report.error)
            return data

    def _ws(self, path: str) -> str:
        return self.server.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path

    def _cookie(self, http: aiohttp.ClientSession) -> dict[str, str]:
        jar = http.cookie_jar.filter_cookies(URL(self.server))
        return {"Cookie": "; ".join(f"{k}={v.value}" for k, v in jar.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vvserver client ring", description=__doc__)
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--role", choices=["visitor", "kiosk"], required=True)
    parser.add_argument("--token", help="kiosk: its device token")
    parser.add_argument("--email", help="visitor: the account's e-mail address")
    parser.add_argument("--password", help="visitor: the account's password")
    parser.add_argument("--answer", choices=["accept", "decline"], help="answer the next ring")
    parser.add_argument("--resident", help="kiosk: the booking number of the resident who calls")
    parser.add_argument("--call", help="kiosk: the first name of the visitor to ring")
    parser.add_argument("--visit-now", type=int, help="visitor: ring this person (id)")
    parser.add_argument("--pin", help="kiosk: the resident's PIN, where the unit asks for it")
    parser.add_argument("--withdraw-after", type=float, help="withdraw after S seconds")
    parser.add_argument("--join", action="store_true", help="go on into an accepted call")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this long")
    args = parser.parse_args(argv)
    if args.role == "kiosk" and not args.token:
        parser.error("a kiosk needs --token")
    if args.role == "visitor" and not (args.email and args.password):
        parser.error("a visitor needs --email and --password")
    if (args.answer is None) == (args.call is None and args.visit_now is None):
        parser.error("either --answer, or --call (kiosk) / --visit-now (visitor)")
    plan = RingPlan(
        role=args.role,
        answer=args.answer,
        call=args.call,
        resident=args.resident,
        visit_now=args.visit_now,
        pin=args.pin,
        withdraw_after=args.withdraw_after,
    )

    def show(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    ringer = Ringer(
        args.server,
        plan,
        token=args.token,
        email=args.email,
        password=args.password,
        on_message=show,
    )
    report = asyncio.run(ringer.run(args.seconds))
    print(json.dumps({"summary": report.__dict__}), flush=True)
    if report.outcome == "accepted" and args.join and report.visit_id is not None:
        token = args.token if args.role == "kiosk" else report.join_token
        assert token is not None
        participant = HeadlessParticipant(
            args.server,
            role=args.role,
            token=token,
            visit_id=report.visit_id,
            on_message=show,
            pin=args.pin,
        )
        joined = asyncio.run(participant.run(args.seconds))
        print(json.dumps({"call": joined.__dict__}), flush=True)
    return 0 if report.outcome == "accepted" and report.error is None else 1
