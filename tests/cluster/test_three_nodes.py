"""Three real nodes on loopback (PostgreSQL, Redis, one process each): a visit's two sides
signal through different nodes and still meet in one room; officers on every node see the
same live board, one of them watches the call from a third node and ends it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from tests.cluster.local_cluster import REDIS_URL, FailoverProxy, LocalCluster
from tests.cluster.support import officer_board, sign_in, until, video_frames, world_in
from tests.factories import add_visit
from tests.media.visit_media_support import MONITOR_SECTIONS
from tests.signaling.conftest import join_link
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.db.models import Recording, Visit

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("loopback_ice")]


async def test_the_two_sides_meet_in_one_room_through_different_nodes_and_a_third_watches(
    cluster: LocalCluster, pg_url: str, tmp_path: Path, clip: Clip
) -> None:
    services, world = await world_in(pg_url, tmp_path / "setup")
    visit_id = await add_visit(services, world, ends_in=300.0)
    n0, n1, n2 = await cluster.start(0, 1, 2)
    visitor_lb = await FailoverProxy([n0]).start()
    kiosk_lb = await FailoverProxy([n1]).start()
    visitor = HeadlessParticipant(
        visitor_lb.url, role="visitor", token=await join_link(services, visit_id), clip=clip
    )
    kiosk = HeadlessParticipant(
        kiosk_lb.url,
        role="kiosk",
        token=world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        clip=clip,
    )
    cookie = await sign_in(n2.url, world.emails["officer_a"])  # a session is valid on every node
    runs = [asyncio.create_task(p.run(max_seconds=120)) for p in (visitor, kiosk)]
    try:
        async with (
            officer_board(n0.url, cookie) as board0,
            officer_board(n1.url, cookie) as board1,
            officer_board(n2.url, cookie) as board2,
        ):
            await until(
                lambda: video_frames(visitor) > 20 and video_frames(kiosk) > 20,
                60,
                "each side receives the other's video",
            )
            # One room, on one node; one recording.
            redis: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
            host = await redis.get(f"{cluster.redis_prefix}:room:{visit_id}")
            await redis.aclose()
            assert host in {n.node_id for n in (n0, n1, n2)}
            async with services.read() as s:
                rooms = await s.scalar(
                    select(func.count())
                    .select_from(Recording)
                    .where(Recording.visit_id == visit_id)
                )
            assert rooms == 1

            def same_everywhere() -> bool:
                rows = [b.rows.get(visit_id) for b in (board0, board1, board2)]
                return all(
                    r is not None
                    and r["visitor_connected"]
                    and r["kiosk_connected"]
                    and r["visitor_media"] == "connected"
                    and r["kiosk_media"] == "connected"
                    and r["kiosk_online"]
                    and r["state"] == "live"
                    for r in rows
                )

            await until(same_everywhere, 30, "the live board shows the call on every node")

            # The officer on the third node watches both sides.
            monitor = TestPeer("monitor", None, sections=MONITOR_SECTIONS)
            try:
                await board2.ws.send_json(
                    {
                        "type": "monitor",
                        "v": 1,
                        "visit_id": visit_id,
                        "sdp": await monitor.create_offer(),
                    }
                )
                await until(lambda: board2.seen("answer"), 30, "the monitor's answer")
                await monitor.accept_answer(board2.seen("answer")[0]["sdp"])
                await monitor.wait_connected()
                await monitor.received_media("video", 0).wait_for_frames(5, within=20)
                await monitor.received_media("video", 1).wait_for_frames(5, within=20)
            finally:
                await monitor.close()

            # The officer ends the visit from the third node: both sides are told.
            await board2.ws.send_json(
                {"type": "terminate", "v": 1, "visit_id": visit_id, "reason": "test: rule broken"}
            )
            reports = await asyncio.wait_for(asyncio.gather(*runs), 30)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await visitor_lb.close()
        await kiosk_lb.close()
    for report in reports:
        assert (report.end_reason, report.end_message) == ("terminated", "ended by the facility")
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        assert visit.state == "terminated"
    await services.db.close()
