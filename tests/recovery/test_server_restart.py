"""The server dies in the middle of a call and is started again: the call is back in seconds.

A real server process, killed (SIGKILL: nothing is closed cleanly) and started on the same port
with the same data. Its start-up repair puts the live visit back to ``ready``; the clients'
sockets reconnect, ``welcome.media_sessions`` tells each side its media connection is gone, and
both re-offer at once instead of waiting about 30 s for ICE consent to fail.
Goal: media flows both ways again at most 3 s after the server answers ``/healthz``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.recovery.support import ServerProcess, free_port, prepare_visit, sampled
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.sample_clip import load_clip
from vvserver.media.aiortc_hooks import set_ice_host_addresses

pytestmark = pytest.mark.slow

GOAL_S = 3.0
TOLERANCE_S = 1.5  # a fresh server process and two aiortc clients on a shared 2-core machine
HOST = "127.0.0.1"


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    set_ice_host_addresses([HOST])
    yield
    set_ice_host_addresses(None)


async def test_a_call_is_back_within_seconds_after_the_server_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    prepared = await prepare_visit(tmp_path / "data", seconds=120)
    server = ServerProcess(prepared, HOST, free_port(HOST), ice_host=HOST)
    await server.start()
    clip = load_clip()
    kiosk = HeadlessParticipant(
        server.url,
        role="kiosk",
        token=prepared.kiosk_token,
        visit_id=prepared.visit_id,
        clip=clip,
    )
    visitor = HeadlessParticipant(server.url, role="visitor", token=prepared.join_token, clip=clip)
    runs = [asyncio.create_task(p.run(max_seconds=100)) for p in (kiosk, visitor)]
    try:
        async with sampled(kiosk) as kiosk_frames, sampled(visitor) as visitor_frames:
            await kiosk_frames.wait_video(30, within=40)
            await visitor_frames.wait_video(30, within=20)

            await server.kill()
            await asyncio.sleep(1.0)  # the clients find it gone and keep knocking
            restarted_log_at = len(server.log())
            healthy_mono = await server.start()
            healthy_at = time.time() - (time.monotonic() - healthy_mono)

            kiosk_hears = await kiosk_frames.video_back_after(healthy_at) - healthy_at
            visitor_hears = await visitor_frames.video_back_after(healthy_at) - healthy_at
            print(
                f"\nserver restart: video back at the kiosk {kiosk_hears:.2f} s and at the "
                f"visitor {visitor_hears:.2f} s after /healthz answered"
            )
            assert kiosk_hears <= GOAL_S + TOLERANCE_S
            assert visitor_hears <= GOAL_S + TOLERANCE_S
            for side in (kiosk, visitor):
                assert side.report.sockets == 2  # reconnected once, to the new process
                assert side.report.joins == 2  # and re-offered there
                assert side.report.end_reason is None  # the same visit goes on
            # The kiosk came back within its grace: no offline warning from the new process.
            assert "is offline" not in server.log()[restarted_log_at:]
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await server.stop()
