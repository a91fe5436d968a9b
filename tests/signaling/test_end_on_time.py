"""The end of a visit is on time however long its recording: both sides are told and the end
state is in the database at the slot's end; the recording is remuxed after that."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import World, add_visit
from tests.signaling.conftest import Client, join_link, receive_until
from tests.signaling.test_full_visit import clip, join_by_socket, live_client, loopback_ice
from vvserver.app_keys import VISIT_MEDIA
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.db.models import Recording, Visit
from vvserver.domain.services import Services
from vvserver.media.frames import EncodedFrame, MediaKind
from vvserver.media.packet_log import PacketLogWriter, SegmentInfo

pytestmark = pytest.mark.slow
__all__ = ["clip", "live_client", "loopback_ice"]  # fixtures shared with the full-visit test

EARLIER_MINUTES = 12  # of media recorded before: a long visit's remux takes seconds


def write_earlier_segment(path: Path, clip: Clip, visit_id: int, minutes: float) -> None:
    """The packet log of an earlier connection of the visitor (segment 0), `minutes` long."""
    started = datetime.now(UTC) - timedelta(minutes=minutes)
    writer = PacketLogWriter(path, SegmentInfo(visit_id, "visitor", 0, started), origin=0.0)
    tracks: tuple[tuple[MediaKind, int, int], ...] = (("video", 30, 3000), ("audio", 50, 960))
    for kind, per_second, ticks in tracks:
        source = clip.video if kind == "video" else clip.audio
        for n in range(round(minutes * 60 * per_second)):
            frame = source[n % len(source)]
            writer.write(
                EncodedFrame(kind, frame.data, n * ticks, frame.keyframe, 1, n / per_second)
            )
    writer.close()


async def end_state_committed(services: Services, visit_id: int) -> Visit:
    async with asyncio.timeout(15):
        while True:
            async with services.read() as s:
                visit = await s.get(Visit, visit_id)
                assert visit is not None
            if visit.state == "completed":
                return visit
            await asyncio.sleep(0.02)


async def test_both_sides_are_told_and_the_end_is_committed_on_time_with_a_long_recording(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    loop = asyncio.get_running_loop()
    visit_id = await add_visit(services, world, ends_in=8.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    async with services.read() as s:
        end_at = (await s.get(Visit, visit_id)).end_at  # type: ignore[union-attr]
    ends_at = loop.time() + (end_at - services.clock.now()).total_seconds()
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk_peer, visitor_peer = TestPeer("kiosk", clip), TestPeer("visitor", clip)
    told: dict[str, float] = {}
    try:
        async with (
            live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk,
            live_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ):
            await receive_until(kiosk, "schedule")
            await join_by_socket(kiosk, kiosk_peer, visit_id=visit_id)
            await join_by_socket(visitor, visitor_peer)
            await visitor_peer.wait_connected()
            directory = services.settings.recordings_dir / f"visit-{visit_id}"
            await asyncio.to_thread(
                write_earlier_segment,
                directory / "visitor-000.vvlog",
                clip,
                visit_id,
                EARLIER_MINUTES,
            )
            committed = asyncio.create_task(end_state_committed(services, visit_id))

            async def told_at(name: str, sock: object) -> None:
                ended = await receive_until(sock, "visit_ended")  # type: ignore[arg-type]
                told[name] = loop.time()
                assert ended["reason"] == "time_up"

            await asyncio.gather(told_at("kiosk", kiosk), told_at("visitor", visitor))
            visit = await committed
            committed_at = loop.time()
    finally:
        await kiosk_peer.close()
        await visitor_peer.close()
    await live_client.app[VISIT_MEDIA].wait_settled(visit_id)
    async with services.read() as s:
        [recording] = (
            await s.scalars(select(Recording).where(Recording.visit_id == visit_id))
        ).all()
    assert recording.finished_at is not None
    remux_s = (recording.finished_at - visit.updated_at).total_seconds()
    print(
        f"\nvisit_ended: kiosk {told['kiosk'] - ends_at:+.2f} s, visitor "
        f"{told['visitor'] - ends_at:+.2f} s; end state committed {committed_at - ends_at:+.2f} s "
        f"after the slot's end; recording finished {remux_s:.2f} s after that"
    )
    for at in (*told.values(), committed_at):
        assert abs(at - ends_at) <= 1.0  # the correctness deadline: the slot's end +-1 s
    assert visit.end_reason == "time over"
    # The recording (the long earlier segment included) was finished after the end was in.
    assert recording.state == "finished"
    assert remux_s > 0
    names = sorted(f["name"] for f in recording.files if f["kind"] == "media")
    assert names == ["kiosk-001.webm", "visitor-000.webm", "visitor-001.webm"]
