"""What a publishing participant's receive path hands each RTP packet to: its feed.

A `FeedSink` notes the packet in the participant's `MediaPresence` (the source of lost time)
and publishes it into the participant's `Feed` for the current connection segment. The C
chain (`_relay_lane.c`) recognises this type and does the same without calling it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.media_flow import SILENCE_AFTER, MediaPresence

if TYPE_CHECKING:
    from vvserver.media.forwarding import Feed


class FeedSink:
    """The packet sink of one receiver: presence, then `feed.publish_packet`. Never asks for
    a keyframe itself (the feed does, to its publisher)."""

    __slots__ = ("feed", "presence", "segment", "time")

    def __init__(
        self, feed: Feed, segment: int, presence: MediaPresence, time: Callable[[], float]
    ) -> None:
        self.feed = feed
        self.segment = segment
        self.presence = presence
        self.time = time  # the event loop's clock

    def __call__(self, rtp: RtpSlice) -> bool:
        now = self.time()
        presence = self.presence  # MediaPresence.heard, inlined: per packet
        if now - presence.heard_at > SILENCE_AFTER:
            presence.gap_from, presence.resumed_at = presence.heard_at, now
        presence.heard_at = now
        self.feed.publish_packet(rtp, self.segment, now)
        return False
