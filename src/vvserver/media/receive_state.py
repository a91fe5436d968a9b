"""Per-stream receive bookkeeping of the lean receive path, in plain Python (no aiortc).

What `fast_receive` keeps per transport and per stream that needs no aiortc object: the
counters of what it dropped, the NACK window (aiortc's NackGenerator, cheaper) and the
incoming-bitrate counter (aiortc's RateCounter, cheaper).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Missing packets tracked at most: aiortc's NackGenerator uses its RTP_HISTORY_SIZE
# (tests/media/test_aiortc_hooks.py checks the two stay equal).
NACK_HISTORY = 128


@dataclass(slots=True)
class ReceiveCounters:
    """What a lean receive path dropped (for tests and metrics)."""

    packets: int = 0
    malformed: int = 0  # not RTP, or cut short
    undecryptable: int = 0  # SRTP authentication or replay check failed
    unrouted: int = 0  # no receiver for its SSRC / payload type
    nacks_sent: int = 0  # RTCP NACKs sent for missing packets


class _Nacks:
    """aiortc's NackGenerator, with the usual case (the next packet) in one comparison."""

    __slots__ = ("max_seq", "missing")

    def __init__(self) -> None:
        self.max_seq = -1
        self.missing: set[int] = set()

    def add(self, seq: int) -> bool:
        """Note a received packet; True when it revealed newly missing packets."""
        if self.max_seq < 0:
            self.max_seq = seq
            return False
        ahead = (seq - self.max_seq) & 0xFFFF
        if ahead == 1:
            self.max_seq = seq
            if self.missing:
                self._truncate()
            return False
        if 0 < ahead < 0x8000:
            for back in range(min(ahead - 1, NACK_HISTORY), 0, -1):
                self.missing.add((seq - back) & 0xFFFF)
            self.max_seq = seq
            self._truncate()
            return True
        self.missing.discard(seq)
        return False

    def _truncate(self) -> None:
        oldest = (self.max_seq - NACK_HISTORY) & 0xFFFF
        for seq in [s for s in self.missing if 0 < ((oldest - s) & 0xFFFF) < 0x8000]:
            self.missing.discard(seq)


class LeanRateCounter:
    """aiortc's `RateCounter` (1 ms buckets over a window), with the same figures: it keeps
    only the milliseconds that had data, so catching up after a quiet spell is one step
    instead of one per millisecond (aiortc's `_erase_old` walks every bucket)."""

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._entries: deque[tuple[int, int]] = deque()
        self._origin_ms: int | None = None
        self._count = 0
        self._value = 0

    def _erase_old(self, now_ms: int) -> None:
        new_origin_ms = now_ms - self._window_size + 1
        assert self._origin_ms is not None
        if self._origin_ms < new_origin_ms:
            entries = self._entries
            while entries and entries[0][0] < new_origin_ms:
                _, value = entries.popleft()
                self._count -= 1
                self._value -= value
            self._origin_ms = new_origin_ms

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        self._entries.append((now_ms, value))
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None
