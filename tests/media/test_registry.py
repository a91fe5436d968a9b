"""The registry holds each open room once and forgets it when it closes."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.room import VisitRoom
from vvserver.media.room_registry import RoomExists, RoomRegistry


@pytest.mark.slow
async def test_rooms_are_registered_once_counted_and_forgotten_when_closed(clip: Clip) -> None:
    registry = RoomRegistry()
    room = registry.open(401, lambda: VisitRoom(401, quality_interval=None))
    with pytest.raises(RoomExists):
        registry.open(401, lambda: VisitRoom(401, quality_interval=None))
    assert registry.get(401) is room
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await kiosk.received_media("video").wait_for_frames(10, within=10)
        stats = registry.stats()
        assert (stats.rooms, stats.participants, stats.monitors) == (1, 2, 0)
        assert stats.frames_forwarded >= 10
    finally:
        await room.close("terminated", "ended by the facility")
        await visitor.close()
        await kiosk.close()
    async with asyncio.timeout(2):
        await registry.wait_forgotten(401)
    assert registry.get(401) is None
    assert len(registry) == 0


async def test_close_all_empties_the_registry() -> None:
    registry = RoomRegistry()
    rooms = [registry.open(n, partial(VisitRoom, n, quality_interval=None)) for n in (1, 2)]
    await registry.close_all()
    assert len(registry) == 0
    assert all(room.ended is not None and room.ended.reason == "closed" for room in rooms)
