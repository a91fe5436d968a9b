"""The waiting room: a room's media passes only from the slot's start.

Participants may join before the slot starts (their peer connections are set up early, so the
call shows both sides within a frame of the start), but until the start the room neither
forwards anything between the sides nor records anything. One `SlotGate` per room holds that
decision; the room's `VisitClock` opens it at the slot start. Every feed of the room is a
`GatedFeed`: while the gate is closed its packets are not forwarded to the other side's tracks
(`forwarding_open()`), and the frames assembled from them are counted (the relay did receive
them: quality figures and lost time see the side's media) and dropped, so the recorder never
sees them either.
"""

from __future__ import annotations

import logging
from typing import Any

from vvserver.media.forwarding import Feed
from vvserver.media.frames import EncodedFrame, MediaKind

logger = logging.getLogger(__name__)


class SlotGate:
    """Closed until the slot starts (`open_now()`, once); open from the start without one."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = ("__dict__", "is_open")

    def __init__(self, *, is_open: bool) -> None:
        self.is_open = is_open

    def open_now(self) -> bool:
        """Open the gate; False when it was open already."""
        if self.is_open:
            return False
        self.is_open = True
        return True


class GatedFeed(Feed):
    """A `Feed` that passes frames to its subscribers only while its room's gate is open."""

    __slots__ = ("frames_before_start", "gate")

    def __init__(self, kind: MediaKind, label: str, *, gate: SlotGate, **options: Any) -> None:
        super().__init__(kind, label, **options)
        self.gate = gate
        self.forwarding_gate = gate  # packets go on to the subscribers only while it is open
        self.frames_before_start = 0  # received in the waiting room, dropped

    def publish(self, frame: EncodedFrame, segment: int) -> None:
        if self.gate.is_open:
            super().publish(frame, segment)
            return
        # The waiting room: received (counted) but neither forwarded nor recorded. The feed
        # keeps wanting a keyframe (video); the room asks the publisher for one at the start
        # (to this SSRC), and delta frames are held until it comes.
        self.frames_in += 1
        self.bytes_in += len(frame.data)
        self.frames_before_start += 1
        self._last_ssrc = frame.ssrc
