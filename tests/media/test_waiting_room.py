"""The waiting room: both sides join before the slot starts, their connections come up, and
nothing passes between them or into the recording until the visit's clock opens the room.

Real aiortc peers over loopback. The room (and the visit) start a few seconds after the peers
join: before the start no packet is forwarded and nothing is recorded, though both sides
send all along; from the start both sides get each other's media within a moment, the
recording begins at the start, and the call's ledger counts from the start only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import World, add_visit
from tests.media.visit_media_support import get_visit, join, recordings_of, visit_is
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.db.models import VisitTransition
from vvserver.domain.services import Services
from vvserver.media.forwarding import MediaCounters
from vvserver.media.frames import MediaKind
from vvserver.media.packet_log import LOG_SUFFIX
from vvserver.media.room import VisitRoom
from vvserver.media.room_events import EventSubscription, Role, SlotStarted
from vvserver.media.room_registry import RoomRegistry
from vvserver.visits_live import VisitMedia

pytestmark = pytest.mark.slow

WAIT_BEFORE_START_S = 3.0
# From the slot's start until both sides have the other's picture (a keyframe) and sound.
# Loopback, no encoding: the keyframe a PLI asks for comes within a frame or two.
TWO_WAY_WITHIN_S = 1.0
ROLES: tuple[Role, ...] = ("visitor", "kiosk")
KINDS: tuple[MediaKind, ...] = ("audio", "video")


def received_nothing(*peers: TestPeer) -> bool:
    return all(
        peer.received_media(kind).frames == 0 and peer.received_media(kind).byte_count == 0
        for peer in peers
        for kind in KINDS
    )


async def test_nothing_is_forwarded_or_recorded_before_the_slot_starts_then_both_flow(
    tmp_path: Path, clip: Clip
) -> None:
    loop = asyncio.get_running_loop()
    starts_at = datetime.now(UTC) + timedelta(seconds=WAIT_BEFORE_START_S)
    start_loop_time = loop.time() + WAIT_BEFORE_START_S
    counters = MediaCounters()
    recording_dir = tmp_path / "visit-501"
    room = VisitRoom(
        501,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(seconds=4),
        recording_dir=recording_dir,
        counters=counters,
        quality_interval=None,
    )
    events = room.events()
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        # Both join early: their connections come up in the waiting room.
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await visitor.wait_connected(within=10)
        await kiosk.wait_connected(within=10)
        assert not room.gate.is_open
        await asyncio.sleep(max(0.0, start_loop_time - loop.time() - 0.3))

        # Just before the start: both sides have been sending to the relay all along...
        for role in ROLES:
            for kind in KINDS:
                assert room.feed(role, kind).frames_in > 0, f"{role} {kind} reached the relay"
        # ... and nothing was forwarded to the other side or written to the recording.
        assert received_nothing(visitor, kiosk)
        assert (counters.frames_forwarded, counters.packets_forwarded) == (0, 0)
        assert not list(recording_dir.glob(f"*{LOG_SUFFIX}"))
        assert not room.gate.is_open

        # The visit's clock opens the room at the start: both sides get each other's media.
        for peer in (visitor, kiosk):
            await peer.received_media("video").wait_for_keyframes(1, within=5)
            await peer.received_media("audio").wait_for_frames(1, within=5)
        for peer in (visitor, kiosk):
            for kind in KINDS:
                media = peer.received_media(kind)
                assert media.first_frame_at is not None
                delay = media.first_frame_at - start_loop_time
                assert -0.05 <= delay <= TWO_WAY_WITHIN_S, f"{peer.name} {kind} after {delay} s"
        assert counters.packets_forwarded > 0
        started = [e async for e in _until_started(events)]
        assert started[-1] == SlotStarted(501, started[-1].at)
        assert started[-1].at >= starts_at
        await room.recording_finished()  # the clock closes the room 4 s after the start
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()

    # The recording starts at the slot's start, not when the sides joined.
    assert room.recording is not None
    manifest = json.loads(room.recording.manifest.read_text())
    files = manifest["files"]
    assert {f["participant"] for f in files} == {"visitor", "kiosk"}
    for entry in files:
        assert datetime.fromisoformat(entry["started_at"]) >= starts_at, entry
        assert entry["duration_s"] <= 4.0 + 0.3, entry


async def _until_started(events: EventSubscription) -> AsyncIterator[SlotStarted]:
    async for event in events:
        if isinstance(event, SlotStarted):
            yield event
            return


@pytest.fixture
async def media(services: Services) -> AsyncIterator[VisitMedia]:
    visit_media = VisitMedia(services, RoomRegistry(), quality_interval=1.0)
    yield visit_media
    await visit_media.close()


async def test_a_visit_joined_early_goes_live_at_its_start_and_counts_time_from_there(
    services: Services, world: World, media: VisitMedia, clip: Clip
) -> None:
    """The visit stays `ready` with no connected or lost time while both sides wait; at the
    slot's start it goes live, and its ledger and recording count from the start."""
    visit_id = await add_visit(
        services, world, ends_in=WAIT_BEFORE_START_S + 4, started=-timedelta(seconds=3)
    )
    visit = await get_visit(services, visit_id)
    start_at = visit.start_at
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        await join(media, visit_id, "kiosk", kiosk)
        await asyncio.sleep(1.2)  # the ledger writes every second while someone is in the call
        early = await get_visit(services, visit_id)
        assert datetime.now(UTC) < start_at, "joined too late for this test: machine too slow?"
        assert early.state == "ready"
        assert (early.visitor_joined_at, early.kiosk_joined_at) != (None, None)
        seconds = (
            early.visitor_connected_s,
            early.kiosk_connected_s,
            early.visitor_lost_s,
            early.kiosk_lost_s,
        )
        assert seconds == (0, 0, 0, 0)
        assert received_nothing(visitor, kiosk)

        await visit_is(services, visit_id, "live")
        for peer in (visitor, kiosk):
            await peer.received_media("video").wait_for_frames(10, within=5)
        await visit_is(services, visit_id, "completed")
        await media.wait_settled(visit_id)
    finally:
        await visitor.close()
        await kiosk.close()

    done = await get_visit(services, visit_id)
    async with services.read() as session:
        went_live = await session.scalar(
            select(VisitTransition.at).where(
                VisitTransition.visit_id == visit_id, VisitTransition.to_state == "live"
            )
        )
    assert went_live is not None
    assert went_live >= start_at
    length = (done.end_at - start_at).total_seconds()
    for connected in (done.visitor_connected_s, done.kiosk_connected_s):
        assert length - 1.0 <= connected <= length + 0.2, (connected, length)
    assert done.visitor_lost_s + done.kiosk_lost_s <= 0.5
    [recording] = await recordings_of(services, visit_id)
    for entry in recording.files:
        if entry["kind"] == "media":
            assert datetime.fromisoformat(entry["started_at"]) >= start_at, entry
            assert entry["duration_s"] <= length + 0.3, entry
