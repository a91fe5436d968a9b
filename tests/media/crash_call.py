"""A recorded two-party call that runs until it is killed (for the SIGKILL recording tests).

Usage: python -m tests.media.crash_call RECORDING_DIR [STALL_VISITOR_VIDEO_AFTER_SECONDS]
Prints "connected" once both peers are connected, and "stalled" when the visitor's camera
stops (its audio goes on).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import load_clip
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.media.room import VisitRoom


async def run(directory: Path, stall_after: float | None) -> None:
    set_ice_host_addresses(["127.0.0.1"])
    clip = load_clip()
    room = VisitRoom(900, recording_dir=directory, quality_interval=None)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    await visitor.connect(room.joiner("visitor"))
    await kiosk.connect(room.joiner("kiosk"))
    await visitor.wait_connected()
    await kiosk.wait_connected()
    print("connected", flush=True)
    if stall_after is not None:
        await asyncio.sleep(stall_after)
        visitor.sent_track("video").paused = True
        print("stalled", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    stall = float(sys.argv[2]) if len(sys.argv) > 2 else None
    asyncio.run(run(Path(sys.argv[1]), stall))
