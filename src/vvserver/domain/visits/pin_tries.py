"""Where the kiosk PIN state of each visit is kept: confirmed or not, wrong tries, lock.

``PinTries`` keeps it in this process; a cluster keeps it in Redis
(``vvserver.cluster.shared_state.RedisPinTries``) so a lockout holds whichever node the kiosk's
socket lands on. ``guard`` serialises the checks of one visit, so the count of wrong tries is
exact; every record is forgotten once its visit and a lock after it are over (``keep_until``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PinState:
    confirmed: bool = False
    wrong: int = 0
    locked_until: datetime | None = None


class PinStore(Protocol):
    def guard(self, visit_id: int) -> AbstractAsyncContextManager[None]:
        """Held around one PIN check of the visit (cluster-wide in a cluster)."""
        ...

    async def get(self, visit_id: int) -> PinState: ...

    async def put(
        self, visit_id: int, state: PinState, *, now: datetime, keep_until: datetime
    ) -> None: ...


@dataclass
class _Kept:
    state: PinState
    keep_until: datetime


class PinTries:
    """The in-process store (one server process)."""

    def __init__(self) -> None:
        self._visits: dict[int, _Kept] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @asynccontextmanager
    async def _guard(self, visit_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(visit_id, asyncio.Lock())
        async with lock:
            yield

    def guard(self, visit_id: int) -> AbstractAsyncContextManager[None]:
        return self._guard(visit_id)

    async def get(self, visit_id: int) -> PinState:
        kept = self._visits.get(visit_id)
        return PinState() if kept is None else kept.state

    async def put(
        self, visit_id: int, state: PinState, *, now: datetime, keep_until: datetime
    ) -> None:
        for other in [v for v, k in self._visits.items() if k.keep_until < now]:
            self._visits.pop(other, None)  # forget visits that are over
            self._locks.pop(other, None)
        self._visits[visit_id] = _Kept(state, keep_until)
