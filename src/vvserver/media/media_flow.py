"""Whether each participant's media reaches the relay: the source of lost time.

A side whose inbound media (audio and video together) stops for more than `SILENCE_AFTER`
seconds is losing time from its last packet until its media returns. Its connection may
still look fine for another ~30 s (ICE consent), so lost time is measured here, from
media, not from connection states.

The per-packet cost is one subtraction, one comparison and one float store
(`MediaPresence.heard`, inlined by the receive path); a 0.5 s ticker per room
(`MediaFlowWatch.check`) turns that into `(flowing, at)` changes, with the exact moments of
the last packet before a silence and the first one after it, however late the tick runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from vvserver.media.room_events import MediaFlowChanged, Role

logger = logging.getLogger(__name__)

SILENCE_AFTER = 2.0  # s without any packet from a side: its media stopped
FLOW_CHECK_INTERVAL = 0.5  # s between checks of a room's sides

FlowChange = tuple[bool, float]  # (flowing, event-loop time it started)


class MediaPresence:
    """When one participant's media was last heard (event-loop time), and the last gap.

    The receive path does, per packet (audio or video alike):
    `if now - p.heard_at > SILENCE_AFTER: p.gap_from, p.resumed_at = p.heard_at, now`
    then `p.heard_at = now` (see `heard`).
    """

    __slots__ = ("gap_from", "heard_at", "resumed_at")

    def __init__(self) -> None:
        self.heard_at = -math.inf  # the latest packet
        self.gap_from = -math.inf  # the last packet before the latest silence
        self.resumed_at = -math.inf  # the first packet after it (or the first packet ever)

    def clear(self) -> None:
        self.heard_at = self.gap_from = self.resumed_at = -math.inf

    def heard(self, now: float) -> None:
        """One packet arrived (the receive path inlines this)."""
        if now - self.heard_at > SILENCE_AFTER:
            self.gap_from = self.heard_at
            self.resumed_at = now
        self.heard_at = now


class MediaFlowWatch:
    """One side's media state for the ledger: flowing, or stopped since its last packet."""

    def __init__(self) -> None:
        self.presence = MediaPresence()
        self.flowing = False
        self._reported_resume = -math.inf

    def reset(self) -> None:
        """A new connection (or none): its first packet is a start, not a resumption."""
        self.presence.clear()  # in place: the receive path holds this object
        self.flowing = False
        self._reported_resume = -math.inf

    def check(self, now: float) -> list[FlowChange]:
        """The changes since the last check, oldest first."""
        presence = self.presence
        changes: list[FlowChange] = []
        if presence.resumed_at > self._reported_resume:
            self._reported_resume = presence.resumed_at
            if self.flowing and presence.gap_from > -math.inf:
                # A silence that began and ended between two checks.
                changes.append((False, presence.gap_from))
            changes.append((True, presence.resumed_at))
            self.flowing = True
        if self.flowing and now - presence.heard_at > SILENCE_AFTER:
            changes.append((False, presence.heard_at))
            self.flowing = False
        return changes


async def watch_media_flow(
    visit_id: int,
    flows: Mapping[Role, MediaFlowWatch],
    now: Callable[[], datetime],
    publish: Callable[[MediaFlowChanged], None],
    interval: float = FLOW_CHECK_INTERVAL,
) -> None:
    """A room's ticker (run as a task): publishes each side's changes, dated on `now`'s clock."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        for role, flow in flows.items():
            for flowing, at in flow.check(loop.time()):
                logger.info(
                    "[visit %s] %s media %s", visit_id, role, "flows" if flowing else "stopped"
                )
                when = now() - timedelta(seconds=loop.time() - at)
                publish(MediaFlowChanged(visit_id, role, flowing, when))
