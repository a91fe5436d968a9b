"""An idle server holds no media stack; the first call loads it, and the call works.

A real ``vvserver serve`` process. Idle, it answers ``/healthz`` and ``/metrics`` without
FFmpeg's libraries (PyAV), libsrtp or cryptography's OpenSSL binding in its memory map: they
are ~40 MB resident of a server that may go days without a call (docs/performance.md,
"Resident memory"). When the visitor opens the visit's socket the server starts loading them,
before the offer comes; then visitor and kiosk see each other as before. A server killed in
the middle of that call and started again loads PyAV at start, to remux the recording the
crash left behind, and still not the rest until a call comes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.recovery.support import ServerProcess, free_port, prepare_visit, sampled
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.sample_clip import load_clip
from vvserver.media.aiortc_hooks import set_ice_host_addresses

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
FFMPEG = "libavcodec"  # PyAV's bundled FFmpeg (and aiortc's codecs through it)
SRTP = "pylibsrtp"
OPENSSL = "cryptography/hazmat/bindings/_rust"
STACK_LOADED = "media: stack loaded in"


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    set_ice_host_addresses([HOST])  # the clients in this process
    yield
    set_ice_host_addresses(None)


def mapped(server: ServerProcess) -> str:
    """The files the server process has mapped (its shared libraries among them)."""
    assert server.process is not None
    return Path(f"/proc/{server.process.pid}/maps").read_text()


async def wait_mapped(server: ServerProcess, library: str, within: float) -> float:
    """Seconds until `library` shows in the server's memory map."""
    started = time.monotonic()
    while library not in mapped(server):
        assert time.monotonic() - started < within, f"{library} not loaded:\n{server.log()}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_an_idle_server_loads_the_media_stack_only_when_a_call_comes(
    tmp_path: Path,
) -> None:
    prepared = await prepare_visit(tmp_path / "data", seconds=120)
    server = ServerProcess(prepared, HOST, free_port(HOST), ice_host=HOST)
    await server.start()
    runs: list[asyncio.Task[object]] = []
    try:
        # Idle: health and metrics answer, and no media library is in memory.
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{server.url}/metrics") as response:
                assert response.status == 200
                assert "vv_calls" in await response.text()
            await asyncio.sleep(0.5)
            for library in (FFMPEG, SRTP, OPENSSL):
                assert library not in mapped(server)
            assert STACK_LOADED not in server.log()

            # The visitor opens the visit's page: its socket is welcomed, no offer sent yet,
            # and the server loads the media stack meanwhile.
            ws_url = server.url.replace("http://", "ws://") + "/ws/visitor"
            async with session.ws_connect(ws_url) as ws:
                await ws.send_json({"type": "auth", "v": 1, "token": prepared.join_token})
                welcome = json.loads((await ws.receive(timeout=10)).data)
                assert welcome["type"] == "welcome"
                took = await wait_mapped(server, FFMPEG, within=20)
                await wait_mapped(server, SRTP, within=5)
                print(f"\nmedia stack mapped {took:.2f} s after the visitor's welcome")

        # The call itself: both sides get each other's video.
        clip = load_clip()
        kiosk = HeadlessParticipant(
            server.url,
            role="kiosk",
            token=prepared.kiosk_token,
            visit_id=prepared.visit_id,
            clip=clip,
        )
        visitor = HeadlessParticipant(
            server.url, role="visitor", token=prepared.join_token, clip=clip
        )
        runs = [asyncio.create_task(p.run(max_seconds=60)) for p in (kiosk, visitor)]
        async with sampled(kiosk) as kiosk_frames, sampled(visitor) as visitor_frames:
            await kiosk_frames.wait_video(30, within=40)
            await visitor_frames.wait_video(30, within=20)
            await asyncio.sleep(1.5)  # the recording's logs are flushed at least every second
        assert server.log().count(STACK_LOADED) == 1

        # Killed in the call and started again: the crash's recording is remuxed at start
        # (PyAV loads for it), and the rest of the stack waits for the next call.
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        runs = []
        await server.kill()
        restarted_at = len(server.log())
        await server.start()
        after_restart = server.log()[restarted_at:]
        assert "recovered 1 recordings left by a crash" in after_restart
        assert FFMPEG in mapped(server)
        assert SRTP not in mapped(server)
        assert STACK_LOADED not in after_restart
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await server.stop()
