"""Small asyncio helpers: a TaskSet that keeps strong references, and cancel_and_wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True when it was set.

    Not ``asyncio.wait_for(event.wait(), seconds)``: on Python 3.11 that loses a cancellation
    arriving just as the event is set, and a loop built on it never stops at shutdown.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return bool(done)


def cancel_requested() -> bool:
    """Whether the current task has been asked to stop (``Task.cancel``), even when the
    ``CancelledError`` was swallowed on the way: redis-py retries a command whose socket
    timeout raced with the cancellation, and the caller's loop would run on for good. Loops
    that run until cancelled check it at the top of each turn (``asyncio.timeout`` uncancels
    what it turns into ``TimeoutError``, so a timeout alone never sets it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until they have finished; a task's own failure is logged.

    A cancellation of the caller while it waits is not swallowed: it propagates (the tasks are
    cancelled already).
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("task %s failed while being cancelled: %r", task.get_name(), exc)


async def stop_task(task: asyncio.Task[Any], grace_s: float) -> None:
    """Wait for a task that was asked to stop (a flag it checks between awaits), cancelling it
    only if it has not stopped within ``grace_s`` seconds.

    For loops that read the database: a task cancelled inside a database call could leave its
    pooled connection in the middle of a transaction.
    """
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        logger.warning(
            "task %s did not stop within %.1f s; cancelling it", task.get_name(), grace_s
        )
        await cancel_and_wait(task)
    elif not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("task %s failed while stopping: %r", task.get_name(), exc)


class TaskSet:
    """Owns background tasks: strong references, failure tracking, cancel-all on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.failed: dict[str, BaseException] = {}

    def create(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a task the set owns; refused (RuntimeError) once the set is closed."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"cannot start {name}: the task set is closed")
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("background task %s died: %r", task.get_name(), exc)
            self.failed[task.get_name()] = exc

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Cancel every task and wait for them; no task can be added afterwards. Idempotent."""
        self._closed = True
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
