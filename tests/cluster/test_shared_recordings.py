"""Nodes that share one recordings directory (an NFS mount as every node's
``<data dir>/recordings``): the node hosting a call is killed outright (SIGKILL), the call goes
on on another node, and a node starting up later finishes the dead node's recording from its
packet logs (remux, then the row adopted): both sides' files play clean. It leaves alone the
recording the live node is still writing into the same directory."""

from __future__ import annotations

import asyncio
import subprocess
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
from vvserver.media.packet_log import LOG_SUFFIX
from vvserver.media.remux import demuxed_duration

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("loopback_ice")]


def ffmpeg_errors(path: Path) -> str:
    """What `ffmpeg -v error` says while decoding the whole file (empty: nothing), every frame
    at its own timestamp: a burst of frames that arrived late (a stalled machine) is dated
    1 ms apart by the recorder, which ffmpeg's default 30-fps null output would merge and
    complain about without any decoding error."""
    done = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-i", str(path)),
            *("-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


def packet_logs(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{LOG_SUFFIX}"))


async def test_a_node_starting_on_the_shared_directory_finishes_a_dead_nodes_recording(
    cluster: LocalCluster, pg_url: str, tmp_path: Path, clip: Clip
) -> None:
    shared = cluster.shared_recordings = tmp_path / "shared-recordings"
    services, world = await world_in(pg_url, tmp_path / "setup")
    visit_id = await add_visit(services, world, ends_in=600.0)
    n0, n1 = cluster.node(0), cluster.node(1)
    await cluster.start(0)  # alone at first: the call is placed on node 0
    proxy = await FailoverProxy([n0, n1]).start()
    visitor = HeadlessParticipant(
        proxy.url, role="visitor", token=await join_link(services, visit_id), clip=clip
    )
    kiosk = HeadlessParticipant(
        proxy.url, role="kiosk", token=world.kiosk_tokens["a1-1"], visit_id=visit_id, clip=clip
    )
    participants = [visitor, kiosk]
    runs = [asyncio.create_task(p.run(max_seconds=300)) for p in participants]
    redis: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await until(lambda: all(video_frames(p) > 30 for p in participants), 60, "media")
        await cluster.start(1)
        before = {id(p): p.peer for p in participants}
        cluster.kill(0)
        await until(
            lambda: all(p.peer is not before[id(p)] and video_frames(p) > 5 for p in participants),
            30,
            "the call goes on on node 1",
        )
        assert await redis.get(f"{cluster.redis_prefix}:room:{visit_id}") == n1.node_id
        async with services.read() as s:
            dead, alive = (
                await s.scalars(
                    select(Recording).where(Recording.visit_id == visit_id).order_by(Recording.id)
                )
            ).all()
        assert (dead.state, alive.state) == ("recording", "recording")
        assert len(packet_logs(shared / dead.directory)) >= 2  # what node 0 left: packet logs

        # Node 0's registration runs out; then a new node starts on the same directory.
        dead_node = f"{cluster.redis_prefix}:node:{n0.node_id}"
        async with asyncio.timeout(15):
            while await redis.exists(dead_node):  # noqa: ASYNC110 - Redis expires it
                await asyncio.sleep(0.2)
        await cluster.start(2)

        async with services.read() as s:
            finished = await s.get(Recording, dead.id, populate_existing=True)
            still = await s.get(Recording, alive.id, populate_existing=True)
            visit = await s.get(Visit, visit_id)
        assert finished is not None
        assert still is not None
        assert visit is not None
        assert finished.state == "finished", finished.state
        media = [f for f in finished.files if f["kind"] == "media"]
        assert {f["participant"] for f in media} == {"visitor", "kiosk"}
        for entry in media:
            path = shared / finished.directory / entry["name"]
            assert demuxed_duration(path) > 1.0
            assert ffmpeg_errors(path) == "", entry["name"]
        assert packet_logs(shared / finished.directory) == []  # remuxed, logs removed
        # The live node's recording and the call: untouched.
        assert still.state == "recording"
        assert len(packet_logs(shared / still.directory)) >= 2
        assert visit.state == "live"
        frames = {id(p): video_frames(p) for p in participants}
        await until(
            lambda: all(video_frames(p) > frames[id(p)] + 30 for p in participants),
            30,
            "media still flows on node 1",
        )
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await proxy.close()
        await redis.aclose()
        await services.db.close()
