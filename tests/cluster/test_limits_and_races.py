"""Two real nodes: limits hold whichever node a try lands on, and two sides joining on two
nodes at the same instant get one room."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from tests.cluster.local_cluster import FailoverProxy, LocalCluster, Node
from tests.cluster.support import until, video_frames, world_in
from tests.factories import add_visit
from tests.signaling.conftest import join_link
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.db.models import Facility, Person, Recording

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("loopback_ice")]

LOGINS_PER_MIN = 4


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, redis_prefix: str) -> AsyncIterator[LocalCluster]:
    """As conftest's, with a login rate limit low enough to reach in a test."""
    nodes = LocalCluster(
        tmp_path / "nodes",
        pg_url,
        redis_prefix,
        env={"VV_RATE_LOGIN_PER_MIN": str(LOGINS_PER_MIN)},
    )
    try:
        yield nodes
    finally:
        await nodes.stop()
        print(nodes.logs())


async def pin_try(node: Node, token: str, visit_id: int, pin: str) -> dict[str, Any]:
    """One kiosk socket on ``node`` sends one PIN; the server's answer to it."""
    ws_url = node.url.replace("http://", "ws://") + "/ws/kiosk"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}) as ws,
    ):
        await ws.send_json({"type": "pin_confirm", "v": 1, "visit_id": visit_id, "pin": pin})
        async with asyncio.timeout(20):
            async for msg in ws:
                message: dict[str, Any] = json.loads(msg.data)
                if message["type"] in ("error", "pin_accepted"):
                    return message
    raise AssertionError("no answer to the PIN")


async def test_pin_lockouts_and_login_rate_limits_hold_across_nodes(
    cluster: LocalCluster, pg_url: str, tmp_path: Path
) -> None:
    services, world = await world_in(pg_url, tmp_path / "setup")
    async with services.write() as s:
        facility = await s.get(Facility, world.facility_a)
        person = await s.get(Person, world.persons["pa1"])
        assert facility is not None
        assert person is not None
        facility.rules = {**facility.rules, "kiosk_pin_required": True}
        person.pin_hash = services.passwords.hash("2468")
    visit_id = await add_visit(services, world, ends_in=600.0)
    nodes = await cluster.start(0, 1)
    token = world.kiosk_tokens["a1-1"]

    answers = [await pin_try(nodes[i % 2], token, visit_id, "1111") for i in range(5)]
    assert [a.get("code") for a in answers] == ["wrong_pin"] * 4 + ["pin_locked"]
    assert [a["details"]["tries_left"] for a in answers[:4]] == [4, 3, 2, 1]
    # Locked on every node, even for the right PIN.
    for node in nodes:
        assert (await pin_try(node, token, visit_id, "2468")).get("code") == "pin_locked"

    # Logins from one address, spread over both nodes: the limit counts them all.
    statuses = []
    async with aiohttp.ClientSession() as http:
        for i in range(LOGINS_PER_MIN + 2):
            async with http.post(
                f"{nodes[i % 2].url}/api/auth/login",
                json={"email": f"nobody{i}@example.org", "password": "wrong password"},
            ) as resp:
                statuses.append(resp.status)
    assert statuses == [401] * LOGINS_PER_MIN + [429, 429]
    await services.db.close()


async def test_two_sides_joining_on_two_nodes_at_the_same_instant_get_one_room(
    cluster: LocalCluster, pg_url: str, tmp_path: Path
) -> None:
    clip: Clip = load_clip()
    services, world = await world_in(pg_url, tmp_path / "setup")
    n0, n1 = await cluster.start(0, 1)
    for attempt in range(2):
        visit_id = await add_visit(services, world, kiosk=("a1-1", "a1-2")[attempt], ends_in=600.0)
        proxies = [await FailoverProxy([node]).start() for node in (n0, n1)]
        visitor = HeadlessParticipant(
            proxies[attempt].url,
            role="visitor",
            token=await join_link(services, visit_id),
            clip=clip,
        )
        kiosk = HeadlessParticipant(
            proxies[1 - attempt].url,
            role="kiosk",
            token=world.kiosk_tokens[("a1-1", "a1-2")[attempt]],
            visit_id=visit_id,
            clip=clip,
        )
        runs = [asyncio.create_task(p.run(max_seconds=60)) for p in (visitor, kiosk)]
        try:
            await until(
                lambda v=visitor, k=kiosk: video_frames(v) > 10 and video_frames(k) > 10,
                45,
                "both sides see each other",
            )
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            for proxy in proxies:
                await proxy.close()
        async with services.read() as s:
            rooms = await s.scalar(
                select(func.count()).select_from(Recording).where(Recording.visit_id == visit_id)
            )
        assert rooms == 1
        assert visitor.report.joins == kiosk.report.joins == 1
    await services.db.close()
