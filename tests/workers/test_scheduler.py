"""Timed work: join windows, reminders, kiosk start, no-shows, overruns, purges, crash repair.

Passes run with explicit ``now`` values; a restart is a new Services object over the same database.
Times are anchored at the real clock because join tokens are also checked against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import fast_passwords, make_settings
from tests.factories import World, build_world
from vvserver.app import build_services
from vvserver.db.models import (
    AuditEntry,
    HousingUnit,
    Kiosk,
    Notification,
    Recording,
    Visit,
    VisitTransition,
)
from vvserver.domain.audit.chain import verify_chain
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import VisitEventBus, VisitStartEvent
from vvserver.domain.visits.join_links import verify_join_token
from vvserver.domain.visits.reconcile import reconcile_at_startup
from vvserver.scheduling.base import SchedulerReport, each_locked_visit
from vvserver.scheduling.loop import run_scheduler, scheduler_pass
from vvserver.settings import Settings

MIN = timedelta(minutes=1)


@dataclass
class Jail:
    services: Services
    world: World
    settings: Settings
    now: datetime  # the real clock, to the second

    def restarted(self) -> Services:
        return build_services(self.settings, passwords=fast_passwords())

    async def visit(
        self,
        start: datetime,
        *,
        state: str = "scheduled",
        unit: str = "a1",
        kiosk: str = "a1-1",
        person: str = "pa1",
        created_at: datetime | None = None,
        **fields: Any,
    ) -> int:
        w = self.world
        async with self.services.write() as s:
            visit = Visit(
                facility_id=w.facility_a,
                unit_id=w.unit_a1 if unit == "a1" else w.unit_a2,
                kiosk_id=w.kiosks[kiosk],
                person_id=w.persons[person],
                visitor_id=w.accounts["visitor"],
                start_at=start,
                end_at=start + 30 * MIN,
                state=state,
                created_at=created_at or start - timedelta(days=2),
                updated_at=self.now,
                **fields,
            )
            s.add(visit)
            await s.flush()
            return visit.id

    async def get(self, visit_id: int, services: Services | None = None) -> Visit:
        async with (services or self.services).read() as s:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            return visit

    async def kiosk_seen(self, kiosk: str, at: datetime | None) -> None:
        async with self.services.write() as s:
            row = await s.get(Kiosk, self.world.kiosks[kiosk])
            assert row is not None
            row.last_seen_at = at

    async def reminders(self) -> list[Notification]:
        async with self.services.read() as s:
            query = select(Notification).where(Notification.kind == "visit_reminder")
            return list((await s.scalars(query)).all())


@pytest.fixture
async def jail(tmp_path: Path, db_url: str) -> AsyncIterator[Jail]:
    settings = make_settings(tmp_path / "data", db_url, scheduler_interval_s=0.02)
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    yield Jail(services, world, settings, datetime.now(UTC).replace(microsecond=0))
    await services.db.close()


async def test_join_window_opens_fifteen_minutes_before_the_start(jail: Jail) -> None:
    start = jail.now + 60 * MIN
    visit_id = await jail.visit(start)
    async with jail.services.write() as s:  # unit A2 opens its window only 5 minutes before
        unit = await s.get(HousingUnit, jail.world.unit_a2)
        assert unit is not None
        unit.rules_override = {"join_window_minutes": 5}
    a2_visit = await jail.visit(start, unit="a2", kiosk="a2-1", person="pa2")

    report = await scheduler_pass(jail.services, start - 16 * MIN)
    assert report.opened == 0
    assert (await jail.get(visit_id)).state == "scheduled"

    report = await scheduler_pass(jail.services, start - 15 * MIN)
    assert report.opened == 1
    assert (await jail.get(visit_id)).state == "ready"
    assert (await jail.get(a2_visit)).state == "scheduled"
    async with jail.services.read() as s:
        step = (await s.scalars(select(VisitTransition).filter_by(visit_id=visit_id))).one()
    assert (step.from_state, step.to_state, step.actor) == (
        "scheduled",
        "ready",
        "system:scheduler",
    )

    await scheduler_pass(jail.services, start - 5 * MIN)
    assert (await jail.get(a2_visit)).state == "ready"


async def test_reminder_is_queued_once_with_a_join_link_that_works(jail: Jail) -> None:
    start = jail.now + 10 * MIN
    visit_id = await jail.visit(start)
    late_booking = await jail.visit(
        start, kiosk="a1-2", person="pa2", unit="a2", created_at=start - 30 * MIN
    )

    await scheduler_pass(jail.services, start - 61 * MIN)
    assert await jail.reminders() == []

    report = await scheduler_pass(jail.services, start - 60 * MIN)
    assert (report.reminders_queued, report.reminders_skipped) == (1, 1)
    (reminder,) = await jail.reminders()
    assert reminder.to_email == jail.world.emails["visitor"]
    assert "PA1 Doe" in reminder.subject
    match = re.search(r"http://127\.0\.0\.1:8080/join/(\S+)", reminder.body)
    assert match is not None
    claims = verify_join_token(jail.services.secret, match.group(1), start - 5 * MIN)
    visit = await jail.get(visit_id)
    assert (claims.visit_id, claims.visitor_id) == (visit_id, jail.world.accounts["visitor"])
    assert claims.token_hash == visit.join_token_hash
    assert visit.reminder_sent_at == start - 60 * MIN
    assert (await jail.get(late_booking)).reminder_sent_at == start - 60 * MIN

    await scheduler_pass(jail.services, start - 59 * MIN)
    restarted = jail.restarted()
    try:
        await scheduler_pass(restarted, start - 58 * MIN)
    finally:
        await restarted.db.close()
    assert len(await jail.reminders()) == 1
    assert (await jail.get(visit_id)).join_token_hash == claims.token_hash


async def test_no_reminder_for_a_visit_whose_start_has_passed(jail: Jail) -> None:
    start = jail.now - 2 * MIN
    visit_id = await jail.visit(start, state="ready")
    report = await scheduler_pass(jail.services, jail.now)
    assert report.reminders_skipped == 1
    assert await jail.reminders() == []
    assert (await jail.get(visit_id)).reminder_sent_at == jail.now


async def test_the_kiosk_is_told_once_when_the_visit_starts(jail: Jail) -> None:
    bus = VisitEventBus()
    events = bus.subscribe()
    start = jail.now + 20 * MIN
    visit_id = await jail.visit(start)

    await scheduler_pass(jail.services, start - 15 * MIN, bus)
    assert (await jail.get(visit_id)).state == "ready"
    assert events.empty()

    report = await scheduler_pass(jail.services, start, bus)
    assert report.start_pushes == 1
    event = events.get_nowait()
    assert isinstance(event, VisitStartEvent)
    assert (event.kind, event.visit_id, event.kiosk_id) == (
        "visit_start",
        visit_id,
        jail.world.kiosks["a1-1"],
    )
    assert (await jail.get(visit_id)).start_pushed_at == start

    await scheduler_pass(jail.services, start + MIN, bus)
    restarted, new_bus = jail.restarted(), VisitEventBus()
    new_events = new_bus.subscribe()
    try:
        await scheduler_pass(restarted, start + 2 * MIN, new_bus)
    finally:
        await restarted.db.close()
    assert events.empty()
    assert new_events.empty()


async def test_a_visitor_who_never_joins_is_a_no_show(jail: Jail) -> None:
    start = jail.now - 5 * MIN
    await jail.kiosk_seen("a1-1", start - MIN)
    visit_id = await jail.visit(start, state="ready", kiosk_joined_at=start)

    await scheduler_pass(jail.services, start + 10 * MIN - timedelta(seconds=1))
    assert (await jail.get(visit_id)).state == "ready"

    report = await scheduler_pass(jail.services, start + 10 * MIN)
    assert report.no_shows == 1
    visit = await jail.get(visit_id)
    assert (visit.state, visit.missing_side) == ("no_show", "visitor")
    assert visit.counts_toward_limit is True
    assert visit.credit_flag is False


async def test_a_kiosk_never_seen_fails_the_visit_on_the_facility(jail: Jail) -> None:
    start = jail.now - 10 * MIN
    offline = await jail.visit(start, visitor_joined_at=start)
    await jail.kiosk_seen("a1-2", start - MIN)
    person_absent = await jail.visit(start, kiosk="a1-2", person="pa2", unit="a2")

    report = await scheduler_pass(jail.services, jail.now)
    assert (report.kiosk_offline, report.no_shows) == (1, 1)
    visit = await jail.get(offline)
    assert (visit.state, visit.end_reason, visit.missing_side) == (
        "failed",
        "kiosk offline",
        "kiosk",
    )
    assert visit.credit_flag is True
    assert visit.counts_toward_limit is False
    absent = await jail.get(person_absent)
    assert (absent.state, absent.missing_side, absent.credit_flag) == ("no_show", "both", False)


async def test_live_visits_past_their_end_are_completed_after_a_grace(jail: Jail) -> None:
    start = jail.now - 30 * MIN
    visit_id = await jail.visit(start, state="live", visitor_joined_at=start, kiosk_joined_at=start)
    end = start + 30 * MIN
    await scheduler_pass(jail.services, end + timedelta(seconds=29))
    assert (await jail.get(visit_id)).state == "live"
    report = await scheduler_pass(jail.services, end + timedelta(seconds=30))
    assert report.overruns_completed == 1
    visit = await jail.get(visit_id)
    assert (visit.state, visit.end_reason) == ("completed", "time over (scheduler)")


def make_recording_dir(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "visitor-0.webm").write_bytes(b"\x1a\x45\xdf\xa3 media")
    (folder / "kiosk-0.webm").write_bytes(b"\x1a\x45\xdf\xa3 media")
    return folder


async def test_expired_recordings_are_purged_and_audited_unless_held_or_outside(
    jail: Jail, tmp_path: Path
) -> None:
    root = jail.settings.data_dir / "recordings"
    visit_id = await jail.visit(jail.now - timedelta(days=100), state="ready")
    expired = make_recording_dir(root, "visit-1")
    held = make_recording_dir(root, "visit-2")
    outside = make_recording_dir(tmp_path, "elsewhere")
    fresh = make_recording_dir(root, "visit-3")
    finished = jail.now - timedelta(days=91)
    rows = {
        "expired": (expired.name, False, finished + timedelta(days=90)),
        "held": (held.name, True, finished + timedelta(days=90)),
        "outside": (str(outside), False, finished + timedelta(days=90)),
        "sneaky": ("../../elsewhere", False, finished + timedelta(days=90)),
        "no_date": (str(fresh), False, None),
    }
    ids: dict[str, int] = {}
    async with jail.services.write() as s:
        for key, (directory, hold, purge_after) in rows.items():
            rec = Recording(
                visit_id=visit_id,
                facility_id=jail.world.facility_a,
                directory=directory,
                files=[{"name": "visitor-0.webm"}, {"name": "kiosk-0.webm"}],
                state="finished",
                legal_hold=hold,
                created_at=finished - 30 * MIN,
                finished_at=finished if key != "no_date" else jail.now - timedelta(days=10),
                purge_after=purge_after,
            )
            s.add(rec)
            await s.flush()
            ids[key] = rec.id

    report = await scheduler_pass(jail.services, jail.now)

    assert (report.recordings_purged, report.purges_refused, report.purge_after_set) == (1, 2, 1)
    assert not expired.exists()
    assert held.exists()
    assert outside.exists()
    assert fresh.exists()
    async with jail.services.read() as s:
        recs = {k: await s.get(Recording, i) for k, i in ids.items()}
        audits = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "recording.purge"))
        ).all()
        assert (await verify_chain(s, jail.services.audit.anchor)).ok
    state = {k: (r.state, r.purged_at) for k, r in recs.items() if r is not None}
    assert state["expired"] == ("purged", jail.now)
    assert state["held"] == ("finished", None)
    assert state["outside"] == ("purge_refused", None)
    assert state["sneaky"] == ("purge_refused", None)
    no_date = recs["no_date"]
    assert no_date is not None
    assert no_date.purge_after == jail.now + timedelta(days=80)
    assert sorted((a.target, a.outcome, a.actor) for a in audits) == sorted(
        [
            (f"recording:{ids['expired']}", "success", "system:scheduler"),
            (f"recording:{ids['outside']}", "failure", "system:scheduler"),
            (f"recording:{ids['sneaky']}", "failure", "system:scheduler"),
        ]
    )

    again = await scheduler_pass(jail.services, jail.now + MIN)
    assert (again.recordings_purged, again.purges_refused) == (0, 0)


async def test_start_up_repairs_visits_and_recordings_left_live(jail: Jail) -> None:
    joined: dict[str, Any] = {
        "visitor_joined_at": jail.now - 40 * MIN,
        "kiosk_joined_at": jail.now - 40 * MIN,
    }
    # The calls' ledgers were last written before the crash: who was in the call, and when.
    ended = await jail.visit(
        jail.now - 40 * MIN,
        state="live",
        ledger_at=jail.now - 11 * MIN,
        visitor_in_call=True,
        **joined,
    )
    running = await jail.visit(
        jail.now - 10 * MIN,
        state="live",
        kiosk="a1-2",
        person="pa2",
        unit="a2",
        start_pushed_at=jail.now - 10 * MIN,
        ledger_at=jail.now - timedelta(seconds=30),
        visitor_in_call=True,
        kiosk_in_call=True,
        **joined,
    )
    async with jail.services.write() as s:
        rec = Recording(
            visit_id=running,
            facility_id=jail.world.facility_a,
            directory="visit-9",
            state="recording",
            created_at=jail.now - 10 * MIN,
        )
        s.add(rec)
        await s.flush()
        rec_id = rec.id

    report = await reconcile_at_startup(jail.services, jail.now)

    assert (report.visits_failed, report.visits_resumed, report.recordings_interrupted) == (1, 1, 1)
    failed = await jail.get(ended)
    assert (failed.state, failed.end_reason, failed.credit_flag) == (
        "failed",
        "server interrupted",
        True,
    )
    # Its call was down until its end: the visitor, in the call then, lost that minute.
    assert (failed.visitor_lost_s, failed.kiosk_lost_s, failed.ledger_at) == (60.0, 0.0, None)
    resumed = await jail.get(running)
    assert (resumed.state, resumed.start_pushed_at) == ("ready", None)
    # The downtime so far is lost by both sides; the ledger stays open until media returns.
    assert (resumed.visitor_lost_s, resumed.kiosk_lost_s) == (30.0, 30.0)
    assert (resumed.ledger_at, resumed.visitor_in_call) == (jail.now, True)
    async with jail.services.read() as s:
        recording = await s.get(Recording, rec_id)
        assert recording is not None
        assert (recording.state, recording.finished_at) == ("interrupted", jail.now)
    assert await reconcile_at_startup(jail.services, jail.now) == type(report)()

    # Back in ready after being live: rejoin is allowed until the end, not a no-show.
    bus = VisitEventBus()
    events = bus.subscribe()
    await scheduler_pass(jail.services, jail.now + MIN, bus)
    assert (await jail.get(running)).state == "ready"
    started = events.get_nowait()
    assert isinstance(started, VisitStartEvent)
    assert started.visit_id == running
    await scheduler_pass(jail.services, jail.now + 21 * MIN)
    resumed = await jail.get(running)
    assert (resumed.state, resumed.credit_flag) == ("failed", True)
    # Never resumed: both sides lost the call until its end (20 minutes after the restart).
    assert (resumed.visitor_lost_s, resumed.kiosk_lost_s) == (30.0 + 1200, 30.0 + 1200)
    assert resumed.ledger_at is None


async def test_one_failing_visit_does_not_stop_the_others(jail: Jail) -> None:
    first = await jail.visit(jail.now)
    second = await jail.visit(jail.now, kiosk="a1-2", person="pa2", unit="a2")
    report = SchedulerReport()

    async def apply(_session: Any, visit: Visit) -> int:
        if visit.id == first:
            raise RuntimeError("bad row")
        visit.state = "ready"
        return visit.id

    done = await each_locked_visit(
        jail.services, [first, second], job="test", report=report, apply=apply
    )
    assert (done, report.errors) == ([second], 1)
    assert (await jail.get(first)).state == "scheduled"


async def test_the_worker_loop_opens_a_due_visit_and_stops_when_cancelled(jail: Jail) -> None:
    bus = VisitEventBus()
    events = bus.subscribe()
    visit_id = await jail.visit(datetime.now(UTC) - timedelta(seconds=1))
    task = asyncio.create_task(run_scheduler(jail.services, events=bus))
    try:
        event = await asyncio.wait_for(events.get(), timeout=10)
        assert isinstance(event, VisitStartEvent)
        assert event.visit_id == visit_id
        assert (await jail.get(visit_id)).state == "ready"
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
