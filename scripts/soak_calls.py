"""Call churn against a real server process for a long time: does anything leak?

    python scripts/soak_calls.py [--minutes 60] [--calls 2] [--call-seconds 8] [--work-dir DIR]

Not run in CI. Seeds `--calls` visits that last the whole run (the benchmark's world), starts
``vvserver serve`` on 127.0.0.1 and repeats rounds until the time is up. In each round every
visit gets a kiosk and a visitor (headless participants, in this process) that join, hold a
short call (video both ways, checked) and drop off; every third round the visitor's side is
cut off mid-call instead (its socket and peer connection vanish without a word) and a new
visitor rejoins the same call. After each round the server process's figures come from
``GET /api/metrics`` (as a facility admin): resident memory, open file descriptors, asyncio
tasks, signaling sockets and peer connections. One line per round; the verdict at the end:
resident memory flat within 5% after the warm-up (the first fifth of the rounds, at least 3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.benchcalls.runner import Pinning, ServerProcess
from scripts.benchcalls.world import BenchWorld, seed_world

from vvserver.app import build_services
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.db.models import Account, Visit
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.settings import Settings

FLAT_WITHIN = 0.05
MIN_VIDEO_FRAMES = 30  # per side and call: about one second of video


@dataclass
class Round:
    number: int
    elapsed_s: float
    kind: str
    calls: int
    calls_ok: int
    rss_mib: float
    open_fds: int
    asyncio_tasks: int
    websockets: int
    peer_connections: int
    rooms_open: int


async def _prepare(world: BenchWorld, minutes: float) -> None:
    """Visits that last the whole run, and the benchmark's officer made a facility admin."""
    settings = Settings(data_dir=world.template_dir)
    services = build_services(settings)
    end = services.clock.now() + timedelta(minutes=minutes + 10)
    try:
        async with services.write() as s:
            await s.execute(update(Visit).values(end_at=end, start_pushed_at=services.clock.now()))
            await s.execute(
                update(Account)
                .where(Account.email == world.officer_email)
                .values(role="facility_admin")
            )
    finally:
        await services.db.close()


async def _one_call(
    url: str, kiosk_token: str, join_token: str, visit_id: int, clip: Clip, call_s: float, cut: bool
) -> bool:
    """Kiosk and visitor join, talk for `call_s`; with `cut` the visitor vanishes and rejoins."""
    kiosk = HeadlessParticipant(url, role="kiosk", token=kiosk_token, visit_id=visit_id, clip=clip)
    visitor = HeadlessParticipant(url, role="visitor", token=join_token, clip=clip)
    runs = [asyncio.create_task(p.run(call_s * 3 + 30)) for p in (kiosk, visitor)]
    try:
        await asyncio.sleep(call_s)
        if cut:
            runs[1].cancel()  # socket and peer connection gone, no leave
            await asyncio.gather(runs[1], return_exceptions=True)
            visitor = HeadlessParticipant(url, role="visitor", token=join_token, clip=clip)
            runs[1] = asyncio.create_task(visitor.run(call_s * 2 + 30))
            await asyncio.sleep(call_s)
        kiosk_video, _ = kiosk.frames_received()
        visitor_video, _ = visitor.frames_received()
        return kiosk_video >= MIN_VIDEO_FRAMES and visitor_video >= MIN_VIDEO_FRAMES
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)


async def _metrics(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/api/metrics") as response:
        response.raise_for_status()
        data: dict[str, Any] = await response.json()
        return data


async def _soak(
    world: BenchWorld, server: ServerProcess, minutes: float, call_s: float
) -> list[Round]:
    set_ice_host_addresses(["127.0.0.1"])
    clip = load_clip()
    rounds: list[Round] = []
    started = time.monotonic()
    # unsafe=True: keep the session cookie of a server addressed by IP (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        login = {"email": world.officer_email, "password": world.officer_password}
        async with session.post(f"{server.url}/api/auth/login", json=login) as response:
            response.raise_for_status()
        number = 0
        while time.monotonic() - started < minutes * 60:
            number += 1
            cut = number % 3 == 0
            results = await asyncio.gather(
                *(
                    _one_call(
                        server.url, c.kiosk_token, c.join_token, c.visit_id, clip, call_s, cut
                    )
                    for c in world.calls
                )
            )
            await asyncio.sleep(2.0)  # let the server notice the hang-ups
            figures = await _metrics(session, server.url)
            row = Round(
                number=number,
                elapsed_s=time.monotonic() - started,
                kind="cut+rejoin" if cut else "call",
                calls=len(results),
                calls_ok=sum(results),
                rss_mib=(figures["rss_bytes"] or 0) / 2**20,
                open_fds=figures["open_fds"] or 0,
                asyncio_tasks=figures["asyncio_tasks"],
                websockets=figures["websockets_open"],
                peer_connections=figures["participants_connected"] + figures["monitors"],
                rooms_open=figures["rooms_open"],
            )
            rounds.append(row)
            print(_line(row), flush=True)
    return rounds


HEADER = (
    "| round | minute | kind | calls ok | RSS MiB | open fds | asyncio tasks | sockets "
    "| peer connections | rooms open |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _line(row: Round) -> str:
    return (
        f"| {row.number} | {row.elapsed_s / 60:.1f} | {row.kind} | {row.calls_ok}/{row.calls} "
        f"| {row.rss_mib:.1f} | {row.open_fds} | {row.asyncio_tasks} | {row.websockets} "
        f"| {row.peer_connections} | {row.rooms_open} |"
    )


def verdict(rounds: list[Round]) -> tuple[bool, str]:
    """RSS flat within 5% after warm-up: the last rounds against the first ones after it."""
    warm = max(3, len(rounds) // 5)
    after = rounds[warm:]
    if len(after) < 6:
        return False, f"too few rounds after the warm-up ({len(after)}): run longer"
    first = statistics.median(r.rss_mib for r in after[:3])
    last = statistics.median(r.rss_mib for r in after[-3:])
    growth = (last - first) / first
    fds = (after[0].open_fds, after[-1].open_fds)
    tasks = (after[0].asyncio_tasks, after[-1].asyncio_tasks)
    failed = sum(1 for r in rounds if r.calls_ok < r.calls)
    flat = abs(growth) <= FLAT_WITHIN
    text = (
        f"RSS {first:.1f} -> {last:.1f} MiB after the warm-up ({warm} rounds): "
        f"{growth * 100:+.1f}% ({'flat' if flat else 'NOT flat'} within {FLAT_WITHIN:.0%}); "
        f"open fds {fds[0]} -> {fds[1]}; asyncio tasks {tasks[0]} -> {tasks[1]}; "
        f"rounds with a call that did not work: {failed}"
    )
    return flat, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--calls", type=int, default=2, help="calls at once in each round")
    parser.add_argument("--call-seconds", type=float, default=8.0)
    parser.add_argument("--work-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        world = seed_world(work / "data", args.calls)
        asyncio.run(_prepare(world, args.minutes))
        server = ServerProcess(
            world.template_dir, "passthrough", Pinning(None, None), work / "server.log"
        )
        try:
            server.wait_ready()
            print(
                f"soak: {args.minutes:g} min, {args.calls} calls per round, server pid "
                f"{server.pid}",
                flush=True,
            )
            print(HEADER, flush=True)
            rounds = asyncio.run(_soak(world, server, args.minutes, args.call_seconds))
        finally:
            server.stop()
    flat, text = verdict(rounds)
    print(f"verdict: {text}", flush=True)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
