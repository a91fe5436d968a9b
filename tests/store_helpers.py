"""Small store shortcuts for tests: a visit written straight into the database, states, mail."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.factories import World
from vvserver.db.models import Facility, Kiosk, Notification, Visit
from vvserver.domain.rules import VisitingRules
from vvserver.services import Services


async def add_visit(
    services: Services,
    world: World,
    *,
    person: str = "pa1",
    visitor: str = "visitor",
    kiosk: str = "a1-1",
    starts_in: timedelta = timedelta(hours=2),
    minutes: int = 30,
    state: str = "scheduled",
) -> int:
    """A booked visit written straight into the store (booking has its own tests)."""
    now = services.clock.now()
    start = (now + starts_in).replace(second=0, microsecond=0)
    async with services.write() as s:
        device = await s.get(Kiosk, world.kiosks[kiosk])
        assert device is not None
        visit = Visit(
            facility_id=device.facility_id,
            unit_id=device.unit_id,
            kiosk_id=device.id,
            person_id=world.persons[person],
            visitor_id=world.accounts[visitor],
            start_at=start,
            end_at=start + timedelta(minutes=minutes),
            state=state,
            privileged=False,
            minors=[],
            counts_toward_limit=True,
            created_at=now,
            updated_at=now,
        )
        s.add(visit)
        await s.flush()
        return visit.id


async def visit_states(services: Services, *visit_ids: int) -> list[str]:
    async with services.read() as s:
        return [(await s.get(Visit, vid)).state for vid in visit_ids]  # type: ignore[union-attr]


async def visit_reason(services: Services, visit_id: int) -> str | None:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return visit.end_reason


async def mail_to(services: Services, email: str, kind: str | None = None) -> list[Notification]:
    async with services.read() as s:
        query = select(Notification).where(Notification.to_email == email)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return list((await s.scalars(query.order_by(Notification.id))).all())


class ManualClock:
    """The server's clock, set by the test (booking rules depend on "now")."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


async def set_rules(services: Services, facility_id: int, **changes: Any) -> None:
    async with services.write() as s:
        facility = await s.get(Facility, facility_id)
        assert facility is not None
        rules = dataclasses.replace(VisitingRules.from_json(facility.rules), **changes)
        facility.rules = rules.to_json()
