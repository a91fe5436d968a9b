"""A short-lived in-process cache of resolved session cookies.

Every API request resolves its cookie; on SQLite each lookup is a read transaction with several
driver-thread round trips. Entries live ``ttl_s`` seconds (default 5) and are dropped when a
``CredentialsRevokedEvent`` is published (sign-out, sign-out everywhere, password change or
reset, deactivation): at once in the process that made the change, and in other processes as
soon as the event reaches them over the bus. Idle timeouts are still checked on every request
against ``last_seen_at``.

A lookup that read the database before a revocation and stores its result after it would put
a revoked session back: ``generation`` counts revocations, and ``put`` ignores a result read
under an older generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from vvserver.domain.accounts.principal import Principal
from vvserver.domain.visits.bus import CredentialsRevokedEvent


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
        self.generation = 0

    def get(self, key: str) -> CachedSession | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.fetched_at > self.ttl_s:
            del self._entries[key]
            return None
        return entry

    def put(
        self,
        key: str,
        principal: Principal,
        last_seen_at: datetime,
        idle: int,
        generation: int | None = None,
    ) -> None:
        """Cache a resolved session; ``generation``: the value read before the lookup began."""
        if self.ttl_s <= 0 or (generation is not None and generation != self.generation):
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = CachedSession(principal, last_seen_at, idle, time.monotonic())

    def forget(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)

    def forget_account(self, account_id: int) -> None:
        self.forget_revoked(CredentialsRevokedEvent(account_id=account_id))

    def forget_revoked(self, event: CredentialsRevokedEvent) -> None:
        """Drop the entries of the sessions ``event`` revoked."""
        self.generation += 1
        for key in [
            key
            for key, entry in self._entries.items()
            if event.matches_session(entry.principal.account_id, key)
        ]:
            del self._entries[key]
