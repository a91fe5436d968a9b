"""An idle server sleeps: the scheduler and the mailer wait for their next deadline or a commit.

Both workers run here with a 30-second safety net (``*_interval_s``), on the real clock, so
anything that happens within a few seconds happened because of a deadline or a wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fast_passwords, make_settings
from tests.factories import World, build_world
from vvserver.app import build_services
from vvserver.db.models import Notification, Recording, Visit
from vvserver.db.wakeups import WorkerWake
from vvserver.domain.booking.book import book_visit
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitEventBus, VisitStartEvent
from vvserver.notify.mailer import run_mailer
from vvserver.scheduling.loop import run_scheduler
from vvserver.scheduling.next_due import next_due_at
from vvserver.scheduling.visit_jobs import OVERRUN_GRACE

SAFETY_NET_S = 30.0
# The loops keep passes half a second apart; anything announced is handled within this.
PROMPT_S = 1.0


@dataclass
class Server:
    services: Services
    world: World
    tasks: list[asyncio.Task[None]]

    def start(self, worker: Callable[[Services], Awaitable[None]]) -> None:
        async def run() -> None:
            await worker(self.services)

        self.tasks.append(asyncio.create_task(run()))

    async def visit(
        self, start: datetime, *, kiosk: str = "a1-1", minutes: int = 30, **fields: Any
    ) -> int:
        w = self.world
        now = datetime.now(UTC)
        async with self.services.write() as s:
            visit = Visit(
                facility_id=w.facility_a,
                unit_id=w.unit_a1,
                kiosk_id=w.kiosks[kiosk],
                person_id=w.persons["pa1"],
                visitor_id=w.accounts["visitor"],
                start_at=start,
                end_at=start + timedelta(minutes=minutes),
                state=fields.pop("state", "scheduled"),
                created_at=fields.pop("created_at", now),
                updated_at=now,
                **fields,
            )
            s.add(visit)
            await s.flush()
            return visit.id

    async def get(self, visit_id: int) -> Visit:
        async with self.services.read() as s:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            return visit


@pytest.fixture
async def server(tmp_path: Path, db_url: str) -> AsyncIterator[Server]:
    settings = make_settings(
        tmp_path / "data",
        db_url,
        scheduler_interval_s=SAFETY_NET_S,
        mailer_interval_s=SAFETY_NET_S,
    )
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    running = Server(services, world, [])
    yield running
    for task in running.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await services.db.close()


async def settled(services: Services) -> None:
    """Until both workers finished their first pass and went to sleep."""
    wakeups = services.wakeups
    for _ in range(200):
        if wakeups.scheduler.passes >= 1 and wakeups.mailer.passes >= 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.7)  # past the first pass's gap: asleep for the long wait now


async def settled_mailer(services: Services) -> None:
    for _ in range(200):
        if services.wakeups.mailer.passes >= 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.7)


async def test_an_idle_server_runs_one_pass_per_worker_and_then_sleeps(server: Server) -> None:
    await server.visit(datetime.now(UTC) + timedelta(days=2))
    server.start(run_scheduler)
    server.start(run_mailer)
    await settled(server.services)
    before = (server.services.wakeups.scheduler.passes, server.services.wakeups.mailer.passes)
    await asyncio.sleep(3)
    after = (server.services.wakeups.scheduler.passes, server.services.wakeups.mailer.passes)
    assert after == before == (1, 1)
    assert not any(task.done() for task in server.tasks)


async def test_a_visit_booked_while_the_scheduler_sleeps_starts_at_its_slot_time(
    server: Server,
) -> None:
    bus = VisitEventBus()
    events = bus.subscribe()
    server.start(lambda services: run_scheduler(services, events=bus))
    server.start(run_mailer)
    await settled(server.services)

    # Inside the join window already and starting in two seconds: the commit wakes the
    # scheduler (join window opens now), which then sleeps until the slot time exactly.
    start = datetime.now(UTC) + timedelta(seconds=2)
    visit_id = await server.visit(start)
    await asyncio.sleep(PROMPT_S)
    opened = await server.get(visit_id)
    assert (opened.state, opened.start_pushed_at) == ("ready", None)

    event = await asyncio.wait_for(events.get(), timeout=10)
    told_at = datetime.now(UTC)
    assert isinstance(event, VisitStartEvent)
    assert event.visit_id == visit_id
    assert start <= told_at <= start + timedelta(seconds=PROMPT_S)
    pushed = await server.get(visit_id)
    assert pushed.start_pushed_at is not None
    assert pushed.start_pushed_at >= start
    # A few passes, not one every second: opening, its own commit, the start, its own commit.
    assert server.services.wakeups.scheduler.passes <= 6


async def test_a_visitor_who_never_comes_is_a_no_show_on_time_without_polling(
    server: Server,
) -> None:
    # Booked long ago (no reminder due), started almost ten minutes ago (the no-show wait).
    start = datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=2)
    visit_id = await server.visit(
        start, created_at=start - timedelta(days=2), reminder_sent_at=start - timedelta(hours=1)
    )
    server.start(run_scheduler)
    await asyncio.sleep(1)
    assert (await server.get(visit_id)).state == "ready"
    for _ in range(40):
        if (await server.get(visit_id)).state != "ready":
            break
        await asyncio.sleep(0.1)
    ended = await server.get(visit_id)
    assert ended.state in ("no_show", "failed")  # the kiosk was never seen: failed
    assert datetime.now(UTC) <= start + timedelta(minutes=10, seconds=PROMPT_S + 0.5)


async def test_an_email_queued_while_the_mailer_sleeps_is_sent_at_once(server: Server) -> None:
    server.start(run_mailer)
    await settled_mailer(server.services)
    outbox = server.services.settings.data_dir / "outbox"
    async with server.services.write() as s:
        note = queue_email(
            s,
            server.services.clock.now(),
            kind="test",
            to="family@example.org",
            subject="Your visit",
            body="See you soon.",
        )
        await s.flush()
        note_id = note.id
    queued = asyncio.get_running_loop().time()
    path = outbox / f"notification-{note_id}.eml"
    for _ in range(500):
        if path.exists():
            break
        await asyncio.sleep(0.02)
    assert path.exists()
    assert asyncio.get_running_loop().time() - queued <= PROMPT_S
    async with server.services.read() as s:
        row = await s.get(Notification, note_id)
        assert row is not None
        assert row.sent_at is not None
    assert server.services.wakeups.mailer.passes <= 3


async def test_the_next_deadline_is_the_earliest_job_of_any_visit(server: Server) -> None:
    services = server.services
    now = datetime.now(UTC).replace(microsecond=0)
    assert await next_due_at(services, now) is None

    start = now + timedelta(hours=3)
    visit_id = await server.visit(start)
    assert await next_due_at(services, now) == start - timedelta(minutes=60)  # reminder
    async with services.write() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        visit.reminder_sent_at = now
    assert await next_due_at(services, now) == start - timedelta(minutes=15)  # join window
    # Once the join window opened: the start, then the no-show check.
    assert await next_due_at(services, start - timedelta(minutes=10)) == start
    assert await next_due_at(services, start) == start + timedelta(minutes=10)

    live_end = now + timedelta(minutes=20)
    await server.visit(live_end - timedelta(minutes=30), state="live", kiosk="a1-2")
    assert await next_due_at(services, now) == live_end + OVERRUN_GRACE

    purge_at = now + timedelta(minutes=5)
    async with services.write() as s:
        s.add(
            Recording(
                visit_id=visit_id,
                facility_id=server.world.facility_a,
                directory="r-1",
                state="finished",
                purge_after=purge_at,
                legal_hold=False,
                created_at=now,
                finished_at=now,
            )
        )
    assert await next_due_at(services, now) == purge_at


async def test_a_booking_wakes_the_sleeping_scheduler_at_once(server: Server) -> None:
    """The booking path writes its visit with a prepared insert: it must still wake the worker."""
    server.start(run_scheduler)
    server.start(run_mailer)
    await settled(server.services)
    before = server.services.wakeups.scheduler.passes
    now = datetime.now(UTC)
    next_slot = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0)
    next_slot += timedelta(minutes=30)  # OPEN_RULES: 30-minute slots all day, no lead time
    await book_visit(
        server.services,
        visitor_id=server.world.accounts["visitor"],
        person_id=server.world.persons["pa1"],
        start=next_slot,
        minors=[],
        actor="visitor",
    )
    await asyncio.sleep(PROMPT_S)
    assert server.services.wakeups.scheduler.passes > before


async def test_a_worker_woken_just_as_it_is_cancelled_still_stops() -> None:
    """Shutdown commits (calls ending) wake the workers while they are being cancelled."""
    wake = WorkerWake()
    sleeper = asyncio.create_task(wake.sleep(SAFETY_NET_S))
    await asyncio.sleep(0)  # asleep on the event
    wake.wake()
    await asyncio.sleep(0)  # the event's waiter finished; the sleeper has not run yet
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
