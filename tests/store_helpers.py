"""Small store shortcuts for tests: visit states and reasons, rules, mail, a manual clock."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import select

from vvserver.db.models import Facility, Notification, Visit
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.services import Services


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
