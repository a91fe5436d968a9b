"""Fixed-window rate limits per (kind, client), in memory; per node, which is what abuse needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vvserver.domain.errors import TooManyRequests


@dataclass
class RateLimiter:
    window_s: float = 60.0
    _counts: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def hit(self, kind: str, client: str, limit: int) -> None:
        """Count one request; raise TooManyRequests past ``limit`` in the current window."""
        now = time.monotonic()
        key = (kind, client)
        started, count = self._counts.get(key, (now, 0))
        if now - started >= self.window_s:
            started, count = now, 0
        count += 1
        self._counts[key] = (started, count)
        if len(self._counts) > 100_000:
            self._evict(now)
        if count > limit:
            retry = max(1, int(self.window_s - (now - started)))
            raise TooManyRequests(
                f"too many {kind} requests; try again in {retry} s", details={"retry_after": retry}
            )

    def _evict(self, now: float) -> None:
        stale = [k for k, (s, _) in self._counts.items() if now - s >= self.window_s]
        for key in stale:
            del self._counts[key]
