"""Timed work runs once across processes: three schedulers (three ``Services``, as three worker
processes or nodes have, on one PostgreSQL database) run at the same moment over the same 200
due visits and 50 expired recordings, and two mailers send the reminders they queued.

Each job locks its row with ``FOR UPDATE SKIP LOCKED`` and writes its marker in the same
transaction; the mailer claims rows the same way, under a lease fenced at each send."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.conftest import (
    _drop_postgres_database,
    _postgres_database,
    fast_passwords,
    make_settings,
)
from tests.factories import World, add_visit, build_world
from tests.workers.smtp_support import Mailbox
from vvserver.app import build_services
from vvserver.db.migrate import upgrade
from vvserver.db.models import AuditEntry, Notification, Recording, Visit, VisitTransition
from vvserver.domain.services import Services
from vvserver.notify.mailer import CLAIM_LEASE, claim_due, mailer_pass, renew_claim
from vvserver.scheduling.loop import scheduler_pass

pytestmark = pytest.mark.postgres

VISITS = 200
RECORDINGS = 50


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    created = await _postgres_database()
    assert created is not None
    name, url = created
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
async def nodes(
    tmp_path: Path, postgres_url: str, smtp_server: tuple[Mailbox, int]
) -> AsyncIterator[list[Services]]:
    """Three processes' worth of services on one database (one data dir: one machine)."""
    settings = make_settings(
        tmp_path / "data", postgres_url, smtp_host="127.0.0.1", smtp_port=smtp_server[1]
    )
    made = [build_services(settings, passwords=fast_passwords()) for _ in range(3)]
    yield made
    for services in made:
        await services.db.close()


async def due_work(services: Services, world: World) -> list[int]:
    """200 visits whose join window is open and reminder due; 50 recordings past retention."""
    visit_ids = []
    kiosks = sorted(world.kiosks)
    for n in range(VISITS):
        visit_ids.append(
            await add_visit(
                services,
                world,
                kiosk=kiosks[n % len(kiosks)],
                starts_in=timedelta(minutes=5 + n // len(kiosks)),
                minutes=1,
            )
        )
    now = services.clock.now()
    async with services.write() as session:
        for n, visit_id in enumerate(visit_ids):
            # All inside the 15-minute join window, booked days ago (the reminder is due).
            start = now + timedelta(minutes=5, seconds=n)
            await session.execute(
                update(Visit)
                .where(Visit.id == visit_id)
                .values(
                    start_at=start,
                    end_at=start + timedelta(minutes=1),
                    created_at=now - timedelta(days=3),
                )
            )
        for n in range(RECORDINGS):
            directory = services.settings.recordings_dir / f"old-{n}"
            directory.mkdir(parents=True)
            (directory / "visitor-001.webm").write_bytes(b"old")
            session.add(
                Recording(
                    visit_id=visit_ids[n],
                    facility_id=world.facility_a,
                    directory=f"old-{n}",
                    files=[{"kind": "media", "name": "visitor-001.webm"}],
                    state="finished",
                    legal_hold=False,
                    created_at=now - timedelta(days=100),
                    finished_at=now - timedelta(days=100),
                    purge_after=now - timedelta(days=1),
                )
            )
    return visit_ids


async def test_three_schedulers_over_the_same_due_jobs_do_each_exactly_once(
    nodes: list[Services], smtp_server: tuple[Mailbox, int]
) -> None:
    first = nodes[0]
    world = await build_world(first)
    visit_ids = await due_work(first, world)
    now = first.clock.now()

    reports = await asyncio.gather(*(scheduler_pass(services, now) for services in nodes))

    assert sum(r.errors for r in reports) == 0
    assert sum(r.opened for r in reports) == VISITS
    assert sum(r.reminders_queued for r in reports) == VISITS
    assert sum(r.recordings_purged for r in reports) == RECORDINGS
    assert sum(1 for r in reports if r.opened) >= 2, "one scheduler did everything: no race"
    async with first.read() as session:
        opened = Counter(
            (
                await session.scalars(
                    select(VisitTransition.visit_id).where(VisitTransition.to_state == "ready")
                )
            ).all()
        )
        reminders = Counter(
            (
                await session.scalars(
                    select(Notification.to_email).where(Notification.kind == "visit_reminder")
                )
            ).all()
        )
        purges = Counter(
            (
                await session.scalars(
                    select(AuditEntry.target).where(AuditEntry.action == "recording.purge")
                )
            ).all()
        )
        states = set((await session.scalars(select(Visit.state))).all())
    assert sorted(opened) == sorted(visit_ids)
    assert set(opened.values()) == {1}
    assert sum(reminders.values()) == VISITS  # one visitor, one reminder per visit
    assert len(purges) == RECORDINGS
    assert set(purges.values()) == {1}
    assert states == {"ready"}
    print(
        f"\n3 schedulers: opened {[r.opened for r in reports]}, reminders "
        f"{[r.reminders_queued for r in reports]}, purged {[r.recordings_purged for r in reports]}"
    )

    # Two mailers (two processes) send the 200 reminders: each leaves exactly once.
    mailbox, _port = smtp_server

    async def drain_outbox(services: Services) -> int:
        sent = 0
        while batch := await mailer_pass(services, now):
            sent += batch
        return sent

    sent = await asyncio.gather(drain_outbox(nodes[1]), drain_outbox(nodes[2]))
    assert sum(sent) == VISITS
    ids = Counter(str(m["Message-ID"]) for m in mailbox.messages())
    assert len(ids) == VISITS
    assert set(ids.values()) == {1}
    async with first.read() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None))
        )
    assert unsent == 0
    print(f"2 mailers: sent {sent}, {len(ids)} distinct messages, none twice")


async def test_a_mailer_whose_lease_ran_out_does_not_send_what_another_claimed(
    nodes: list[Services], smtp_server: tuple[Mailbox, int]
) -> None:
    slow, other = nodes[0], nodes[1]
    world = await build_world(slow)
    await due_work(slow, world)
    now = slow.clock.now()
    await scheduler_pass(slow, now)
    claimed = await claim_due(slow, now, limit=VISITS)  # ... then its SMTP server hangs
    assert len(claimed) == VISITS
    later = now + CLAIM_LEASE + timedelta(seconds=1)
    retaken = await claim_due(other, later)  # the lease ran out: another mailer takes 50
    assert len(retaken) == 50
    renewed = {mail.id: await renew_claim(slow, mail) for mail in claimed}
    assert {mail_id for mail_id, mail in renewed.items() if mail is None} == {
        mail.id for mail in retaken
    }
