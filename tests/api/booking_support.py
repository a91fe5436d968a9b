"""What the booking tests share: approving a visitor, booking through HTTP, error codes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.factories import ApiUser
from vvserver.db.models import (
    Approval,
    Person,
)
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]

TUE_10 = "2027-01-05T10:00:00-05:00"
TUE_1030 = "2027-01-05T10:30:00-05:00"
TUE_11 = "2027-01-05T11:00:00-05:00"
WED_10 = "2027-01-06T10:00:00-05:00"


async def approve(services: Services, visitor_id: int, person_id: int, **extra: Any) -> None:
    async with services.write() as s:
        person = await s.get(Person, person_id)
        assert person is not None
        s.add(
            Approval(
                person_id=person_id,
                visitor_id=visitor_id,
                facility_id=person.facility_id,
                status=extra.pop("status", "approved"),
                relationship="friend",
                professional=extra.pop("professional", "none"),
                created_at=services.clock.now(),
                **extra,
            )
        )


async def book(user: ApiUser, person_id: int, start: str, **extra: Any) -> tuple[int, Any]:
    resp = await user.post("/api/visits", json={"person_id": person_id, "start": start, **extra})
    return resp.status, await resp.json()


def code(body: Any) -> str:
    return str(body["error"]["code"])


async def slot_starts(user: ApiUser, person_id: int, day: str) -> list[str]:
    resp = await user.get(f"/api/persons/{person_id}/availability?from={day}&to={day}")
    assert resp.status == 200, await resp.text()
    return [slot["start"] for slot in (await resp.json())["slots"]]
