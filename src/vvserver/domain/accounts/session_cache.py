"""A short-lived in-process cache of resolved session cookies.

Every API request resolves its cookie; on SQLite each lookup is a read transaction with several
driver-thread round trips. Entries live ``ttl_s`` seconds (default 5) and are dropped at once on
sign-out, password reset and deactivation in this process; a change made by another process is
seen within the TTL. Idle timeouts are still checked on every request against ``last_seen_at``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from vvserver.domain.accounts.principal import Principal


@dataclass(slots=True)
class CachedSession:
    principal: Principal
    last_seen_at: datetime
    idle_minutes: int
    fetched_at: float


class SessionCache:
    def __init__(self, ttl_s: float = 5.0, max_entries: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, CachedSession] = {}

    def get(self, key: str) -> CachedSession | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.fetched_at > self.ttl_s:
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, principal: Principal, last_seen_at: datetime, idle: int) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = CachedSession(principal, last_seen_at, idle, time.monotonic())

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_account(self, account_id: int) -> None:
        for key in [k for k, e in self._entries.items() if e.principal.account_id == account_id]:
            del self._entries[key]
