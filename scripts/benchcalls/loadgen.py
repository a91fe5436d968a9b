"""Load-generator process: joins N visits (both sides) through the public protocol, has an
officer monitor every 10th call, runs one direct peer-to-peer pair as the delay reference,
and measures one window. Prints one JSON line with the figures.

    python -m scripts.benchcalls.loadgen PLAN.json

Run it pinned to its own cores (``taskset``); the server's CPU is read from /proc (user +
system time of every server process: each node and its workers). With ``redis_port`` it also
counts the Redis commands of the window (``INFO commandstats``), and with ``perf_event`` the
server processes' ``perf stat`` count of that event (e.g. instructions) over the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import uvloop
from scripts.benchcalls.clients import (
    DelayProbe,
    DirectPair,
    JoinRefused,
    Officer,
    RelayedCall,
    Traffic,
    Window,
    traffic,
)
from scripts.benchcalls.cluster import redis_command_counts
from scripts.benchcalls.janus_client import JanusCall
from scripts.benchcalls.procstat import PerfCount, cpu_seconds, descendants, percentile, rss_kib
from scripts.benchcalls.world import BenchCall

from vvserver.client.peer import ReceivedMedia, TestPeer
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.media.aiortc_hooks import set_ice_host_addresses

logger = logging.getLogger(__name__)

JOIN_CONCURRENCY = 8
IP_UDP_HEADER_BYTES = 28


@dataclass(frozen=True, slots=True)
class Plan:
    server_url: str
    server_pid: int
    calls: tuple[BenchCall, ...]
    officer_email: str
    officer_password: str
    officer_totp_secret: str
    monitor_every: int = 10
    warmup_s: float = 3.0
    window_s: float = 10.0
    join_timeout_s: float = 30.0
    direct: bool = True
    mode: str = "vvserver"  # or "janus": calls through Janus' videocall plugin
    janus_url: str = ""
    record_prefix: str = ""  # janus: where its recordings go
    ice_host: str = "127.0.0.1"
    # A cluster benchmark: every node's URL and process (call k: visitor on node k mod N,
    # kiosk on node k+1 mod N); the server figures add up every node and its workers.
    server_urls: tuple[str, ...] = ()
    server_pids: tuple[int, ...] = ()
    # Independent processes (the split baseline): call k wholly on process k mod N.
    split: bool = False
    redis_port: int = 0  # the cluster's private Redis: its commands in the window
    perf_event: str = ""  # also count this perf event of the server processes

    @classmethod
    def read(cls, path: Path) -> Plan:
        data: dict[str, Any] = json.loads(path.read_text())
        data["calls"] = tuple(BenchCall.from_json(c) for c in data["calls"])
        data["server_urls"] = tuple(data.get("server_urls", ()))
        data["server_pids"] = tuple(data.get("server_pids", ()))
        return cls(**data)


class Call(Protocol):
    """A relayed 1:1 call (vvserver or Janus) as the measurement sees it."""

    peers: list[TestPeer]
    probes: list[DelayProbe]
    started_at: float

    @property
    def label(self) -> str: ...

    async def join(self, clip: Clip, window: Window) -> None: ...

    def video(self) -> list[ReceivedMedia]: ...

    async def close(self) -> None: ...


async def _traffic_of(peers: list[TestPeer]) -> Traffic:
    total = Traffic()
    for peer in peers:
        total += await traffic(peer)
    return total


async def _join_all(
    plan: Plan, calls: list[Call], window: Window, failures: list[str]
) -> list[Call]:
    clip = load_clip()
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def join(call: Call) -> bool:
        async with gate:
            try:
                async with asyncio.timeout(plan.join_timeout_s):
                    await call.join(clip, window)
                return True
            except (JoinRefused, TimeoutError, aiohttp.ClientError, OSError) as exc:
                failures.append(f"{call.label}: {exc!r}")
                return False

    joined = await asyncio.gather(*(join(call) for call in calls))
    return [call for call, ok in zip(calls, joined, strict=True) if ok]


async def _first_frames(calls: list[Call], within: float) -> None:
    async with asyncio.timeout(within):
        for call in calls:
            for media in call.video():
                await media.wait_for_frames(1, within=within)


def server_processes(plan: Plan) -> list[int]:
    """The server's processes: each node (or the one server) and the workers under it."""
    return [pid for top in plan.server_pids or (plan.server_pid,) for pid in descendants(top)]


def server_cpu(plan: Plan) -> float:
    total = 0.0
    for pid in server_processes(plan):
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def measure(plan: Plan) -> dict[str, Any]:
    set_ice_host_addresses([plan.ice_host])
    clip = await asyncio.to_thread(load_clip)
    loop = asyncio.get_running_loop()
    window = Window()
    failures: list[str] = []
    # no pool limit: each relayed call holds two WebSockets and each Janus call a long poll,
    # so aiohttp's default of 100 connections stalled every join past 50 calls
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        calls: list[Call] = []
        for number, booked in enumerate(plan.calls):
            if plan.mode == "janus":
                calls.append(JanusCall(number, plan.janus_url, session, plan.record_prefix))
            else:
                urls = plan.server_urls or (plan.server_url,)
                calls.append(
                    RelayedCall(
                        booked,
                        urls[number % len(urls)],
                        session,
                        kiosk_url=urls[(number + (0 if plan.split else 1)) % len(urls)],
                    )
                )
        officer = Officer(session, plan.server_url)
        direct = DirectPair(clip) if plan.direct else None
        monitors: list[TestPeer] = []
        try:
            joined = await _join_all(plan, calls, window, failures)
            watched = [
                c
                for i, c in enumerate(calls)
                if plan.monitor_every
                and i % plan.monitor_every == 0
                and c in joined
                # the officer signs in on the first process: split, it sees only its calls
                and not (plan.split and i % len(plan.server_urls) != 0)
            ]
            if watched:
                await officer.sign_in(
                    plan.officer_email, plan.officer_password, plan.officer_totp_secret
                )
                for call in watched:
                    assert isinstance(call, RelayedCall)
                    try:
                        monitors.append(await officer.monitor(call.call.visit_id, clip))
                    except (JoinRefused, aiohttp.ClientError) as exc:
                        failures.append(f"monitor: {exc}")
            if direct is not None:
                await direct.connect(clip, window)
            try:
                await _first_frames(joined, plan.join_timeout_s)
            except TimeoutError:
                failures.append("some participants never received a video frame")
            await asyncio.sleep(plan.warmup_s)
            participants = [peer for call in joined for peer in call.peers]
            frames_before = [p.received_media("video").frames for p in participants]
            monitor_frames_before = [m.received_media("video", 1).frames for m in monitors]
            traffic_before = await _traffic_of(participants)
            monitor_traffic_before = await _traffic_of(monitors)
            redis0 = redis_command_counts(plan.redis_port) if plan.redis_port else {}
            perf = PerfCount(plan.perf_event, server_processes(plan)) if plan.perf_event else None
            window_opened_at = time.monotonic()
            started = loop.time()
            server_cpu0, own_cpu0 = server_cpu(plan), time.process_time()
            window.open = True
            await asyncio.sleep(plan.window_s)
            window.open = False
            elapsed = loop.time() - started
            server_cpu_s = server_cpu(plan) - server_cpu0
            perf_count = perf.stop() if perf is not None else None
            redis1 = redis_command_counts(plan.redis_port) if plan.redis_port else {}
            own_cpu = time.process_time() - own_cpu0
            server_rss = sum(rss_kib(pid) for pid in server_processes(plan))
            fps = [
                (p.received_media("video").frames - before) / elapsed
                for p, before in zip(participants, frames_before, strict=True)
            ]
            fps += [0.0] * (2 * (len(calls) - len(joined)))  # calls that never joined
            monitor_fps = [
                (m.received_media("video", 1).frames - before) / elapsed
                for m, before in zip(monitors, monitor_frames_before, strict=True)
            ]
            sent = await _traffic_of(participants) - traffic_before
            monitor_sent = await _traffic_of(monitors) - monitor_traffic_before
            relay_delays = [d for call in joined for p in call.probes for d in p.delays_ms]
            direct_delays = [d for p in (direct.probes if direct else []) for d in p.delays_ms]
            first_frames = [
                media.first_frame_at - call.started_at
                for call in joined
                for media in call.video()
                if media.first_frame_at is not None
            ]
        finally:
            for call in calls:
                await call.close()
            await officer.close()
            if direct is not None:
                await direct.close()
    lost, received = sent.rtp_packets_lost, sent.rtp_packets_received
    extra: dict[str, Any] = {}
    if plan.redis_port:
        by_command = {name: redis1[name] - redis0.get(name, 0) for name in redis1}
        extra["redis_at_window_open"] = sum(redis0.values())
        extra["redis_window_opened_at"] = window_opened_at
        extra["redis_window_commands"] = sum(by_command.values())
        extra["redis_window_by_command"] = {k: v for k, v in sorted(by_command.items()) if v}
    if plan.perf_event:
        extra["perf_event"] = plan.perf_event
        extra["perf_per_call_s"] = (
            perf_count / elapsed / max(1, len(joined)) if perf_count is not None else None
        )
    return {
        **extra,
        "n": len(plan.calls),
        "joined": len(joined),
        "monitors": len(monitors),
        "failures": failures,
        "window_s": elapsed,
        "server_cpu_pct": 100 * server_cpu_s / elapsed,
        "server_rss_kib": server_rss,
        "loadgen_cpu_pct": 100 * own_cpu / elapsed,
        "fps_min": min(fps) if fps else 0.0,
        "fps_median": statistics.median(fps) if fps else 0.0,
        "monitor_fps_min": min(monitor_fps) if monitor_fps else None,
        "relay_delay_p50_ms": percentile(relay_delays, 0.5),
        "relay_delay_p95_ms": percentile(relay_delays, 0.95),
        "direct_delay_p50_ms": percentile(direct_delays, 0.5),
        "direct_delay_p95_ms": percentile(direct_delays, 0.95),
        "delay_samples": len(relay_delays),
        "join_first_frame_p50_s": percentile(first_frames, 0.5),
        "join_first_frame_max_s": max(first_frames) if first_frames else None,
        "loss_pct": 100 * lost / (lost + received) if lost + received else 0.0,
        "egress_bps_per_call": (
            8
            * (sent.bytes_received + IP_UDP_HEADER_BYTES * sent.packets_received)
            / elapsed
            / max(1, len(joined))
        ),
        "egress_bps_per_monitor": (
            8
            * (monitor_sent.bytes_received + IP_UDP_HEADER_BYTES * monitor_sent.packets_received)
            / elapsed
            / max(1, len(monitors))
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # uvloop, as the server runs: asyncio's own loop keeps its timers in a heap of Python
    # objects (a comparison in Python per heap step, one timer per frame sent per track) and
    # was most of the load generator's own overhead.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(measure(Plan.read(Path(args[0]))))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
