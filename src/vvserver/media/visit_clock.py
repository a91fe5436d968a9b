"""The server-side visit clock: the only authority on when a visit's call starts and ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

logger = logging.getLogger(__name__)

DEFAULT_WARNINGS = (timedelta(minutes=5), timedelta(minutes=1))
MAX_SLEEP = 30.0  # re-read the wall clock at least this often (NTP steps, suspend)


class VisitClock:
    """Starts the call at `starts_at`, warns at fixed times before `ends_at` and then ends the
    visit, whatever clients do.

    `now` is the service clock (aware UTC datetimes). `on_start` runs once at `starts_at` (at
    once when that has passed, or without one): the room's waiting room ends there. Warnings
    already past when the clock starts are skipped; the end fires within the loop's timer
    accuracy of `ends_at`.
    """

    def __init__(
        self,
        ends_at: datetime,
        *,
        now: Callable[[], datetime],
        on_warning: Callable[[int], None],
        on_end: Callable[[], Awaitable[None]],
        warnings: Sequence[timedelta] = DEFAULT_WARNINGS,
        starts_at: datetime | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        if ends_at.tzinfo is None or (starts_at is not None and starts_at.tzinfo is None):
            raise ValueError("starts_at and ends_at must be aware datetimes")
        self.starts_at = starts_at
        self._on_start = on_start
        if any(w <= timedelta(0) for w in warnings):
            raise ValueError("warnings must be positive durations before the end")
        self.ends_at = ends_at
        self._now = now
        self._on_warning = on_warning
        self._on_end = on_end
        self._warnings = sorted(set(warnings), reverse=True)

    def seconds_left(self) -> float:
        return (self.ends_at - self._now()).total_seconds()

    async def _sleep_until(self, moment: datetime) -> None:
        while True:
            remaining = (moment - self._now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, MAX_SLEEP))

    async def run(self) -> None:
        """Run until the end (as a task); cancel it to stop the clock."""
        if self.starts_at is not None:
            await self._sleep_until(min(self.starts_at, self.ends_at))
        if self._on_start is not None:
            self._on_start()
        for warning in self._warnings:
            moment = self.ends_at - warning
            if moment <= self._now():
                continue  # joined after this warning was due
            await self._sleep_until(moment)
            self._on_warning(round(warning.total_seconds()))
        await self._sleep_until(self.ends_at)
        await self._on_end()
