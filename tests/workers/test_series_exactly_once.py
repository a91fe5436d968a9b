"""Standing weekly visits are booked once across processes: three schedulers (three
``Services`` on one PostgreSQL database, as three nodes have) run at the same moment over 40
due series; each occurrence is booked exactly once and e-mailed once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import (
    _drop_postgres_database,
    _postgres_database,
    fast_passwords,
    make_settings,
)
from tests.factories import build_world
from tests.store_helpers import ManualClock
from vvserver.app import build_services
from vvserver.db.migrate import upgrade
from vvserver.db.models import Facility, Notification, SeriesOccurrence, Visit, VisitSeries
from vvserver.domain.services import Services
from vvserver.scheduling.loop import scheduler_pass

pytestmark = pytest.mark.postgres

SERIES = 40
NOW = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)  # Monday, 07:00 in New York


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[Services]]:
    created = await _postgres_database()
    assert created is not None
    name, url = created
    await upgrade(url)
    settings = make_settings(tmp_path / "data", url)
    made = [build_services(settings, passwords=fast_passwords()) for _ in range(3)]
    for services in made:
        services.clock = ManualClock(NOW)
    try:
        yield made
    finally:
        for services in made:
            await services.db.close()
        await _drop_postgres_database(name)


async def test_three_schedulers_book_each_occurrence_once(nodes: list[Services]) -> None:
    first = nodes[0]
    world = await build_world(first)
    # 40 series of one visitor with one person, at different days and half hours: each one's
    # next two occurrences are inside the 14-day window (80 bookings: more than the World's
    # weekly limits allow, so the limits are lifted for this load).
    async with first.write() as s:
        facility = await s.get(Facility, world.facility_a)
        assert facility is not None
        facility.rules = {
            **facility.rules,
            "max_visits_per_person_week": 1000,
            "max_visits_per_visitor_week": 1000,
        }
        for n in range(SERIES):
            day = date(2027, 1, 5 + n % 6)  # Tuesday 5 .. Sunday 10 January
            hour, half = divmod(16 + n // 6, 2)
            at = f"{hour:02d}:{30 * half:02d}"
            start = datetime.fromisoformat(f"{day}T{at}:00-05:00").astimezone(UTC)
            s.add(
                VisitSeries(
                    visitor_id=world.accounts["visitor"],
                    person_id=world.persons["pa1"],
                    weekday=day.weekday(),
                    local_time=at,
                    minors=[],
                    state="active",
                    next_date=day,
                    next_start_at=start,
                    end_reason=None,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )

    reports = await asyncio.gather(*(scheduler_pass(services, NOW) for services in nodes))

    assert sum(r.errors for r in reports) == 0
    assert sum(r.series_skipped for r in reports) == 0
    assert sum(r.series_booked for r in reports) == 2 * SERIES
    async with first.read() as s:
        occurrences = Counter(
            (await s.execute(select(SeriesOccurrence.series_id, SeriesOccurrence.local_date))).all()
        )
        visits = (await s.scalars(select(Visit.start_at))).all()
        mails = (
            await s.scalars(select(Notification.id).where(Notification.kind == "visit_booked"))
        ).all()
    assert len(occurrences) == 2 * SERIES
    assert set(occurrences.values()) == {1}
    assert len(visits) == len(set(visits)) == 2 * SERIES
    assert len(mails) == 2 * SERIES
    print(f"\n3 schedulers booked {[r.series_booked for r in reports]} occurrences")
