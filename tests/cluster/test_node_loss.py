"""A node hosting two calls is killed outright (SIGKILL): both calls have media again within
10 s on the surviving nodes, same visits, same slot end; the killed node's recordings are
remuxed and adopted when it comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from tests.cluster.local_cluster import REDIS_URL, FailoverProxy, LocalCluster
from tests.cluster.support import until, video_frames, world_in
from tests.factories import add_visit
from tests.signaling.conftest import join_link
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.sample_clip import Clip
from vvserver.db.models import Recording, Visit
from vvserver.media.remux import demuxed_duration

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("loopback_ice")]

FAILOVER_S = 10.0


async def test_the_calls_of_a_killed_node_go_on_on_the_surviving_nodes(
    cluster: LocalCluster, pg_url: str, tmp_path: Path, clip: Clip
) -> None:
    services, world = await world_in(pg_url, tmp_path / "setup")
    first = await add_visit(services, world, ends_in=600.0)
    second = await add_visit(
        services, world, person="pa2", kiosk="a2-1", visitor="visitor2", ends_in=600.0
    )
    async with services.read() as s:
        ends = {v: (await s.get(Visit, v)).end_at for v in (first, second)}  # type: ignore[union-attr]
    n0, n1, n2 = cluster.node(0), cluster.node(1), cluster.node(2)
    await cluster.start(0)  # alone at first: both calls are placed on node 0
    proxies = [
        await FailoverProxy(order).start() for order in ([n0, n1, n2], [n1, n2, n0], [n0, n2, n1])
    ]
    visits = {first: "a1-1", second: "a2-1"}
    participants: list[HeadlessParticipant] = []
    for index, (visit_id, kiosk) in enumerate(visits.items()):
        participants.append(
            HeadlessParticipant(
                proxies[2].url, role="visitor", token=await join_link(services, visit_id), clip=clip
            )
        )
        participants.append(
            HeadlessParticipant(
                proxies[index].url,
                role="kiosk",
                token=world.kiosk_tokens[kiosk],
                visit_id=visit_id,
                clip=clip,
            )
        )
    runs = [asyncio.create_task(p.run(max_seconds=240)) for p in participants]
    redis: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await until(
            lambda: all(video_frames(p) > 20 for p in participants), 60, "all four have media"
        )
        for visit_id in visits:
            assert await redis.get(f"{cluster.redis_prefix}:room:{visit_id}") == n0.node_id
        await cluster.start(1, 2)
        # The second visit's kiosk now signals through node 1; its call stays on node 0.
        await proxies[1].drop_connections()
        await until(lambda: participants[3].report.joins >= 2, 30, "the kiosk joined again")
        await until(lambda: video_frames(participants[3]) > 10, 30, "its media flows again")
        assert await redis.get(f"{cluster.redis_prefix}:room:{second}") == n0.node_id

        before = {id(p): p.peer for p in participants}
        killed_at = time.monotonic()
        cluster.kill(0)
        back: dict[int, float] = {}

        def all_back() -> bool:
            for p in participants:
                if id(p) not in back and p.peer is not before[id(p)] and video_frames(p) > 5:
                    back[id(p)] = time.monotonic() - killed_at
            return len(back) == len(participants)

        await until(all_back, 30, "every side has media again")
        worst = max(back.values())
        print(f"media again after the node loss: worst {worst:.1f} s, {sorted(back.values())}")
        assert worst < FAILOVER_S
        for visit_id in visits:
            host = await redis.get(f"{cluster.redis_prefix}:room:{visit_id}")
            assert host in (n1.node_id, n2.node_id)
        async with services.read() as s:
            for visit_id, end_at in ends.items():
                visit = await s.get(Visit, visit_id)
                assert visit is not None
                assert visit.state == "live"
                assert visit.end_at == end_at  # the slot end did not move
                if hasattr(Visit, "ledger_at"):  # the call ledger kept in the visit row
                    assert visit.visitor_lost_s > 0
                    assert visit.kiosk_lost_s > 0
                rows = (
                    await s.scalars(select(Recording).where(Recording.visit_id == visit_id))
                ).all()
                assert len(rows) == 2  # a new segment on the new node
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for proxy in proxies:
            await proxy.close()
        await redis.aclose()

    # Node 0 comes back: it finishes what it was recording when it was killed.
    await cluster.start(0)
    async with services.read() as s:
        for visit_id in visits:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            assert visit.state == "live"  # its call runs on another node: left alone
            rows = (
                await s.scalars(
                    select(Recording).where(Recording.visit_id == visit_id).order_by(Recording.id)
                )
            ).all()
            dead, alive = rows
            assert alive.state == "recording"
            assert dead.state == "finished", dead.state
            media = [f for f in dead.files if f["kind"] == "media"]
            assert {f["participant"] for f in media} == {"visitor", "kiosk"}
            for entry in media:
                path = n0.data_dir / "recordings" / dead.directory / entry["name"]
                assert demuxed_duration(path) > 1.0
    await services.db.close()


async def test_a_node_that_goes_silent_loses_its_calls_to_a_live_node(
    cluster: LocalCluster, pg_url: str, tmp_path: Path, clip: Clip
) -> None:
    """Power or network lost: no connection closes; the node's registry entry expires."""
    services, world = await world_in(pg_url, tmp_path / "setup")
    visit_id = await add_visit(services, world, ends_in=600.0)
    n0, n1 = cluster.node(0), cluster.node(1)
    await cluster.start(0)
    proxy = await FailoverProxy([n1, n0]).start()  # node 1 first, once it is up
    participants = [
        HeadlessParticipant(
            proxy.url, role="visitor", token=await join_link(services, visit_id), clip=clip
        ),
        HeadlessParticipant(
            proxy.url,
            role="kiosk",
            token=world.kiosk_tokens["a1-1"],
            visit_id=visit_id,
            clip=clip,
        ),
    ]
    runs = [asyncio.create_task(p.run(max_seconds=180)) for p in participants]
    redis: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await until(lambda: all(video_frames(p) > 20 for p in participants), 60, "media")
        await cluster.start(1)
        await proxy.drop_connections()  # both sockets move to node 1; the call stays on node 0
        await until(lambda: all(p.report.joins >= 2 for p in participants), 30, "joined again")
        await until(lambda: all(video_frames(p) > 10 for p in participants), 30, "media again")
        assert await redis.get(f"{cluster.redis_prefix}:room:{visit_id}") == n0.node_id

        before = {id(p): p.peer for p in participants}
        frozen_at = time.monotonic()
        cluster.freeze(0)
        await until(
            lambda: all(p.peer is not before[id(p)] and video_frames(p) > 5 for p in participants),
            30,
            "both sides have media again",
        )
        took = time.monotonic() - frozen_at
        print(f"media again after the node went silent: {took:.1f} s")
        assert took < FAILOVER_S
        assert await redis.get(f"{cluster.redis_prefix}:room:{visit_id}") == n1.node_id
    finally:
        cluster.kill(0)
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await proxy.close()
        await redis.aclose()
        await services.db.close()
