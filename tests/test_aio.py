"""The task helpers every background loop relies on: cancellation reaches whoever asked for it,
a closed task set takes no new work, and a loop asked to stop is not cut inside a read."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from vvserver.aio import TaskSet, cancel_and_wait, cancel_requested, stop_task
from vvserver.cluster.nodes import NodeRegistry


async def test_a_caller_cancelled_while_waiting_for_cancelled_tasks_is_cancelled_too() -> None:
    slow_to_stop = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await slow_to_stop.wait()  # takes its time to clean up

    worker = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    caller = asyncio.create_task(cancel_and_wait(worker))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    slow_to_stop.set()
    await asyncio.wait({worker})
    assert worker.cancelled()


async def test_cancel_and_wait_returns_once_the_tasks_are_done_and_logs_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("broke while stopping") from None

    quiet = asyncio.create_task(asyncio.sleep(3600))
    noisy = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    await cancel_and_wait(quiet, noisy)
    assert quiet.cancelled()
    assert noisy.done()
    assert "broke while stopping" in caplog.text


async def test_a_closed_task_set_refuses_new_tasks_and_closing_twice_is_safe() -> None:
    tasks = TaskSet()
    running = tasks.create(asyncio.sleep(3600), name="sleeper")
    await tasks.close()
    assert running.cancelled()
    assert tasks.closed
    late = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        tasks.create(late, name="too late")
    assert not tasks.tasks
    await tasks.close()


async def test_stop_task_lets_a_loop_finish_its_read_and_cancels_only_a_stuck_one() -> None:
    stop = asyncio.Event()
    reads_finished = 0

    async def loop_with_reads() -> None:
        nonlocal reads_finished
        while not stop.is_set():
            await asyncio.sleep(0.05)  # a "database read" that must not be cut
            reads_finished += 1

    polite = asyncio.create_task(loop_with_reads())
    await asyncio.sleep(0.02)
    stop.set()
    await stop_task(polite, grace_s=1.0)
    assert not polite.cancelled()
    assert reads_finished == 1

    stuck = asyncio.create_task(asyncio.sleep(3600))
    await stop_task(stuck, grace_s=0.05)
    assert stuck.cancelled()


class RegistryWhoseRedisSwallowsACancel(NodeRegistry):
    """A node registry whose Redis client swallows one cancellation, as redis-py does when a
    command's socket timeout races with it (it retries the command)."""

    def __init__(self) -> None:
        self.swallowed = 0
        self.scans = 0

    async def beat(self) -> None:
        pass

    async def scan(self) -> None:
        self.scans += 1
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed += 1


async def test_a_loop_stops_at_shutdown_even_when_a_library_swallowed_its_cancellation() -> None:
    registry = RegistryWhoseRedisSwallowsACancel()
    task = asyncio.create_task(registry.run())
    await asyncio.sleep(0.02)  # inside a scan
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert task.cancelled()
    assert registry.swallowed == 1
    assert registry.scans == 1  # no turn after the cancellation


async def test_a_timeout_alone_is_not_a_request_to_stop() -> None:
    async def wait_briefly() -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        return cancel_requested()

    assert await asyncio.create_task(wait_briefly()) is False
