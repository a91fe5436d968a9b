"""Fixed-window rate limits per (kind, client).

``RateLimiter`` counts in this process's memory. In a cluster every node counts in Redis
instead (``vvserver.cluster.shared_state.RedisRateLimiter``), so tries spread over nodes add
up; both raise the same ``TooManyRequests``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vvserver.domain.errors import TooManyRequests


def too_many(kind: str, retry_s: float) -> TooManyRequests:
    retry = max(1, int(retry_s))
    return TooManyRequests(
        f"too many {kind} requests; try again in {retry} s", details={"retry_after": retry}
    )


@dataclass
class RateLimiter:
    window_s: float = 60.0
    _counts: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    async def hit(self, kind: str, client: str, limit: int) -> None:
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
            raise too_many(kind, self.window_s - (now - started))

    def _evict(self, now: float) -> None:
        stale = [k for k, (s, _) in self._counts.items() if now - s >= self.window_s]
        for key in stale:
            del self._counts[key]
