"""An operator stops a server (systemd's SIGTERM, or Ctrl-C's SIGINT) while a visit is on.

A call that ends within the drain timeout ends normally and the process exits 0. A longer one
is handed off at the deadline: both sides get ``rejoin``, the recording is finished, the process
exits 0; when the server is back the two sides re-join the same visit, a second recording
starts, and the seconds in between count as lost. Real server processes, real aiortc peers.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

from tests.node.support import CallWorld, ServerProcess, call_world, get_json
from vvserver.client.headless import HeadlessParticipant, ParticipantReport
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.db.models import Recording, Visit, VisitTransition
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.visits_live.handoff import DRAIN_REASON

pytestmark = pytest.mark.slow

DRAIN_TIMEOUT_S = 4.0


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    set_ice_host_addresses(["127.0.0.1"])
    yield
    set_ice_host_addresses(None)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip()


@dataclass
class Side:
    """One headless participant, and when it was told to re-join."""

    participant: HeadlessParticipant
    rejoin_at: list[float] = field(default_factory=list)
    run: asyncio.Task[ParticipantReport] | None = None

    def seen(self, message: dict[str, Any]) -> None:
        if message["type"] == "rejoin":
            self.rejoin_at.append(time.monotonic())


async def goes_live(world: CallWorld, visit_id: int, within: float = 45.0) -> float:
    """Wait until both sides are connected (the visit is ``live``); when that was seen."""
    deadline = time.monotonic() + within
    while (await visit_row(world, visit_id)).state != "live":
        assert time.monotonic() < deadline, "the visit did not go live"
        await asyncio.sleep(0.1)
    return time.monotonic()


def both_sides(
    server: ServerProcess, world: CallWorld, visit_id: int, token: str, clip: Clip
) -> list[Side]:
    """The visitor with its join link, the kiosk told which visit to join (as at visit_start)."""
    visitor = HeadlessParticipant(server.base, role="visitor", token=token, clip=clip)
    kiosk = HeadlessParticipant(
        server.base,
        role="kiosk",
        token=world.world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        clip=clip,
    )
    sides = []
    for participant in (visitor, kiosk):
        side = Side(participant)
        participant.on_message = side.seen
        side.run = asyncio.create_task(side.participant.run(max_seconds=120))
        sides.append(side)
    return sides


async def reports(sides: list[Side], within: float) -> list[ParticipantReport]:
    runs = [side.run for side in sides if side.run is not None]
    return list(await asyncio.wait_for(asyncio.gather(*runs), within))


async def stop_sides(sides: list[Side]) -> None:
    for side in sides:
        if side.run is not None and not side.run.done():
            side.run.cancel()
    await asyncio.gather(*(s.run for s in sides if s.run is not None), return_exceptions=True)


async def visit_row(world: CallWorld, visit_id: int) -> Visit:
    async with world.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        return visit


async def recordings(world: CallWorld, visit_id: int) -> list[Recording]:
    async with world.services.read() as session:
        rows = await session.scalars(
            select(Recording).where(Recording.visit_id == visit_id).order_by(Recording.id)
        )
        return list(rows.all())


def decoded(path: Path) -> tuple[dict[str, int], int]:
    """Frames decoded per kind, and packets that would not decode (a loss on a busy machine
    leaves a few delta frames without their reference until the next keyframe)."""
    counts = {"video": 0, "audio": 0}
    broken = 0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            try:
                counts[packet.stream.type] += len(packet.decode())
            except av.error.InvalidDataError:
                broken += 1
    return counts, broken


def assert_decodable(world: CallWorld, recording: Recording) -> dict[str, int]:
    """Finished, with a file per side that demuxes to its end and decodes."""
    assert recording.state == "finished", recording.state
    media = [f for f in recording.files if f["kind"] == "media"]
    assert {f["participant"] for f in media} == {"visitor", "kiosk"}
    totals: dict[str, int] = {"video": 0, "audio": 0}
    directory = world.data_dir / "recordings" / recording.directory
    for entry in media:
        counts, broken = decoded(directory / entry["name"])
        assert counts["video"] > 10, (entry, counts)
        assert counts["audio"] > 20, (entry, counts)
        assert broken <= counts["video"] // 5, (entry, counts, broken)
        for kind, count in counts.items():
            totals[kind] += count
    return totals


async def test_sigterm_lets_a_call_that_ends_in_time_end_normally(
    tmp_path: Path, clip: Clip
) -> None:
    world = await call_world(tmp_path / "data")
    server = ServerProcess(
        ["--data-dir", str(world.data_dir), "--drain-timeout", "60"], tmp_path / "server.log"
    ).start()
    sides: list[Side] = []
    try:
        await server.healthy()
        visit_id, token = await world.visit(ends_in=14.0)
        sides = both_sides(server, world, visit_id, token, clip)
        await goes_live(world, visit_id)
        signalled = server.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        status, health = await get_json(f"{server.base}/healthz")
        assert (status, health["status"]) == (503, "draining")
        ended = await reports(sides, within=30)
        code = await server.exited(within=30)
        exit_after = time.monotonic() - signalled
        exited_at = datetime.now(UTC)
    finally:
        await stop_sides(sides)
        server.kill()
    assert code == 0, server.output()[-3000:]
    for report in ended:
        assert (report.end_reason, report.rejoins) == ("time_up", 0), report
    visit = await visit_row(world, visit_id)
    assert visit.state == "completed"
    assert visit.visitor_lost_s == visit.kiosk_lost_s == 0.0
    [recording] = await recordings(world, visit_id)
    assert_decodable(world, recording)
    after_end = (exited_at - visit.end_at).total_seconds()
    print(
        f"\nSIGTERM, call ended in time: exit 0 {exit_after:.1f} s after the signal, "
        f"{after_end:.1f} s after the call's end; 0 lost seconds"
    )
    assert "drained in" in server.output()


async def handed_off(
    tmp_path: Path, clip: Clip, signum: signal.Signals, *, ends_in: float
) -> tuple[CallWorld, int, ServerProcess, list[Side], float]:
    """A call on a server that gets ``signum``: returns once the server exited at the drain
    deadline and both sides were told to re-join (and are reconnecting)."""
    world = await call_world(tmp_path / "data")
    server = ServerProcess(
        ["--data-dir", str(world.data_dir), "--drain-timeout", str(DRAIN_TIMEOUT_S)],
        tmp_path / "server.log",
    ).start()
    await server.healthy()
    visit_id, token = await world.visit(ends_in=ends_in)
    sides = both_sides(server, world, visit_id, token, clip)
    await goes_live(world, visit_id)
    await asyncio.sleep(2.0)  # media flows for a while
    signalled = server.signal(signum)
    code = await server.exited(within=DRAIN_TIMEOUT_S + 10)
    exit_after = time.monotonic() - signalled
    assert code == 0, server.output()[-3000:]
    for side in sides:
        assert len(side.rejoin_at) == 1, side.participant.report
        told_after = side.rejoin_at[0] - signalled
        assert DRAIN_TIMEOUT_S - 0.5 <= told_after <= DRAIN_TIMEOUT_S + 10, told_after
    visit = await visit_row(world, visit_id)
    assert visit.state == "ready"  # resumable: the call goes on when the clients are back
    async with world.services.read() as session:
        last = await session.scalar(
            select(VisitTransition.reason)
            .where(VisitTransition.visit_id == visit_id)
            .order_by(VisitTransition.id.desc())
            .limit(1)
        )
    assert last == DRAIN_REASON
    [recording] = await recordings(world, visit_id)
    assert_decodable(world, recording)
    print(
        f"\n{signum.name}, call longer than the drain: rejoin sent, exit 0 after "
        f"{exit_after:.1f} s (drain timeout {DRAIN_TIMEOUT_S:.0f} s), recording finished"
    )
    return world, visit_id, server, sides, exit_after


async def test_sigint_hands_a_long_call_off_at_the_drain_deadline(
    tmp_path: Path, clip: Clip
) -> None:
    sides: list[Side] = []
    try:
        _, _, server, sides, _ = await handed_off(tmp_path, clip, signal.SIGINT, ends_in=120)
    finally:
        await stop_sides(sides)
    assert "1 handed off, 2 sockets told to re-join" in server.output()


async def test_after_a_sigterm_hand_off_the_call_resumes_and_the_gap_counts_as_lost(
    tmp_path: Path, clip: Clip
) -> None:
    sides: list[Side] = []
    server: ServerProcess | None = None
    try:
        world, visit_id, first, sides, _ = await handed_off(
            tmp_path, clip, signal.SIGTERM, ends_in=150
        )
        # The server comes back (systemd's Restart=): both sides re-join by themselves.
        server = ServerProcess(first.args, tmp_path / "server2.log", port=first.port).start()
        await server.healthy()
        back = time.monotonic()
        live_again = await goes_live(world, visit_id, within=60)
        visit = await visit_row(world, visit_id)  # each side's lost time is written as it connects
        await asyncio.sleep(3.0)  # the second recording gets a few seconds of the call
    finally:
        await stop_sides(sides)
        if server is not None:
            server.signal(signal.SIGTERM)
            assert await server.exited(within=DRAIN_TIMEOUT_S + 10) == 0
    for side in sides:
        assert side.participant.report.rejoins == 1
    handed_off_at = min(side.rejoin_at[0] for side in sides)
    for lost in (visit.visitor_lost_s, visit.kiosk_lost_s):
        # Lost from the hand-off until that side's media was back: not before the server was,
        # and by the time the visit was live again.
        assert back - handed_off_at - 1.0 <= lost <= live_again - handed_off_at + 1.0, (
            lost,
            back - handed_off_at,
            live_again - handed_off_at,
        )
    first_recording, second_recording = await recordings(world, visit_id)
    assert second_recording.directory == f"{first_recording.directory}-2"
    assert_decodable(world, first_recording)
    assert_decodable(world, second_recording)
    print(
        f"\nresumed after the restart ({back - handed_off_at:.1f} s after the hand-off): lost "
        f"{visit.visitor_lost_s:.1f} s (visitor), {visit.kiosk_lost_s:.1f} s (kiosk)"
    )
