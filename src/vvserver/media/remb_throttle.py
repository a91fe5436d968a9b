"""How often a receiver's bandwidth estimate (RTCP REMB) goes back to the sender.

aiortc sends a REMB whenever its estimator updates, which is on every frame while it detects
overuse (a loaded machine's jitter is enough): each one is an RTCP packet to build, encrypt and
send, and for the sender one to decrypt, parse and act on. libwebrtc's `RembThrottler` sends
at most one per 200 ms, except that a drop of 3% or more goes at once; so does the relay.
"""

from __future__ import annotations

REMB_INTERVAL = 0.2  # s between REMBs that do not lower the estimate much
REMB_DROP = 0.97  # an estimate below this share of the last one sent goes at once


class RembThrottle:
    """Decides which of a receiver's estimates are sent."""

    __slots__ = ("bitrate", "sent_at")

    def __init__(self) -> None:
        self.sent_at = -1e9
        self.bitrate = 0  # the last bitrate sent (bps)

    def due(self, bitrate: int, now: float) -> bool:
        """Whether to send `bitrate` now; if so it counts as sent."""
        if now - self.sent_at < REMB_INTERVAL and bitrate >= self.bitrate * REMB_DROP:
            return False
        self.sent_at, self.bitrate = now, bitrate
        return True
