"""Lost time and credit: a visit whose call was cut for too long, or that failed on the facility
side, is credited; its visitor is e-mailed a free rebooking and books a make-up visit that does
not count against the weekly limits. The clock is frozen on Monday 4 January 2027, 07:00 in New
York (facility A)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.factories import ApiUser, World
from tests.store_helpers import ManualClock, mail_to, set_rules
from vvserver.db.models import Kiosk, Visit
from vvserver.domain.services import Services
from vvserver.media.room import VisitRoom
from vvserver.scheduling.loop import scheduler_pass
from vvserver.visits_live.room_watch import RoomWatch

Client = TestClient[web.Request, web.Application]

NOW = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
TUE_10 = "2027-01-05T10:00:00-05:00"
TUE_11 = "2027-01-05T11:00:00-05:00"
TUE_12 = "2027-01-05T12:00:00-05:00"
WED_10 = "2027-01-06T10:00:00-05:00"


async def ended_visit(
    services: Services,
    world: World,
    *,
    state: str = "completed",
    credit: bool = False,
    visitor: str = "visitor",
    kiosk: str = "a1-1",
    start: datetime = NOW - timedelta(days=1),  # Sunday: the week before
    **fields: Any,
) -> int:
    """A visit that took place earlier, written straight into the store."""
    async with services.write() as s:
        device = await s.get(Kiosk, world.kiosks[kiosk])
        assert device is not None
        visit = Visit(
            facility_id=device.facility_id,
            unit_id=device.unit_id,
            kiosk_id=device.id,
            person_id=world.persons["pa1"],
            visitor_id=world.accounts[visitor],
            start_at=start,
            end_at=start + timedelta(minutes=30),
            state=state,
            privileged=False,
            minors=[],
            counts_toward_limit=state != "failed",
            credit_flag=credit,
            created_at=start - timedelta(days=2),
            updated_at=start + timedelta(minutes=30),
            **fields,
        )
        s.add(visit)
        await s.flush()
        return visit.id


async def stored(services: Services, visit_id: int) -> Visit:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return visit


async def end_call(services: Services, visit_id: int, *, visitor_lost: timedelta) -> None:
    """The room of a live visit runs to its end; the visitor dropped ``visitor_lost`` before it
    and never came back, so the ledger's last accounting adds that much lost time."""
    visit = await stored(services, visit_id)
    room = VisitRoom(visit_id, quality_interval=None)
    watch = RoomWatch(services, room, recording_id=None, ledger_lock=asyncio.Lock())
    watch.ledger.connected("visitor", visit.start_at)
    watch.ledger.connected("kiosk", visit.start_at)
    watch.ledger.disconnected("visitor", visit.end_at - visitor_lost)
    watching = asyncio.create_task(watch.run())
    await room.close("time_up", "the visit's time is over")
    await asyncio.wait_for(watching, timeout=10)


def code(body: Any) -> str:
    return str(body["error"]["code"])


async def rebook(user: ApiUser, visit_id: int, start: str) -> tuple[int, Any]:
    resp = await user.post(f"/api/visits/{visit_id}/rebook", json={"start": start})
    return resp.status, await resp.json()


async def test_three_minutes_lost_credits_the_visit_and_offers_a_free_rebooking(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    visit_id = await ended_visit(
        services, world, state="live", start=NOW - timedelta(minutes=30), kiosk_lost_s=0.0
    )
    await end_call(services, visit_id, visitor_lost=timedelta(minutes=3))

    visit = await stored(services, visit_id)
    assert visit.state == "completed"
    assert visit.visitor_lost_s == pytest.approx(180)
    assert visit.visitor_connected_s == pytest.approx(27 * 60)
    assert visit.credit_flag is True
    [offer] = await mail_to(services, world.emails["visitor"], "visit_credit")
    assert "3 minutes" in offer.body
    assert "interrupted" in offer.body
    assert f"visit number {visit_id}" in offer.body
    assert "does not count against your weekly visits" in offer.body

    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    shown = await (await visitor.get(f"/api/visits/{visit_id}")).json()
    assert shown["credit_flag"] is True
    assert shown["lost_seconds"] == 180
    assert shown["connected_seconds"] == 27 * 60
    assert shown["rebooked_as"] is None


async def test_thirty_seconds_lost_is_not_credited(
    services: Services, world: World, clock: ManualClock
) -> None:
    visit_id = await ended_visit(services, world, state="live", start=NOW - timedelta(minutes=30))
    await end_call(services, visit_id, visitor_lost=timedelta(seconds=30))

    visit = await stored(services, visit_id)
    assert (visit.state, visit.credit_flag) == ("completed", False)
    assert visit.visitor_lost_s == pytest.approx(30)
    assert await mail_to(services, world.emails["visitor"], "visit_credit") == []


async def test_the_threshold_is_the_facilitys_setting(
    services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(services, world.facility_a, lost_credit_seconds=20)
    visit_id = await ended_visit(services, world, state="live", start=NOW - timedelta(minutes=30))
    await end_call(services, visit_id, visitor_lost=timedelta(seconds=30))

    assert (await stored(services, visit_id)).credit_flag is True
    [offer] = await mail_to(services, world.emails["visitor"], "visit_credit")
    assert "1 minute" in offer.body


async def test_the_make_up_visit_does_not_count_against_the_weekly_limits(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    await set_rules(
        services, world.facility_a, max_visits_per_visitor_week=1, max_visits_per_person_week=1
    )
    credited = await ended_visit(services, world, credit=True, visitor_lost_s=200.0)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    pa1 = world.persons["pa1"]
    # The week's one visit is booked; another booking that week is refused.
    resp = await visitor.post("/api/visits", json={"person_id": pa1, "start": TUE_10})
    assert resp.status == 201, await resp.text()
    ordinary = (await resp.json())["id"]
    resp = await visitor.post("/api/visits", json={"person_id": pa1, "start": WED_10})
    assert resp.status == 409
    assert code(await resp.json()) in ("visitor_weekly_limit", "person_weekly_limit")

    status, makeup = await rebook(visitor, credited, TUE_11)
    assert status == 201, makeup
    assert makeup["makeup_for_visit_id"] == credited
    assert makeup["join_url"].startswith("http://127.0.0.1:8080/join/")
    assert (makeup["start"], makeup["state"]) == (TUE_11, "scheduled")
    row = await stored(services, makeup["id"])
    assert row.makeup_for_visit_id == credited
    # The make-up takes no place in the week: with the ordinary visit cancelled, the week's
    # one visit is free again.
    resp = await visitor.post(f"/api/visits/{ordinary}/cancel", json={})
    assert resp.status == 200, await resp.text()
    resp = await visitor.post("/api/visits", json={"person_id": pa1, "start": WED_10})
    assert resp.status == 201, await resp.text()

    shown = await (await visitor.get(f"/api/visits/{credited}")).json()
    assert shown["rebooked_as"] == makeup["id"]
    listed = await (await visitor.get("/api/visits")).json()
    assert {v["id"]: v["rebooked_as"] for v in listed}[credited] == makeup["id"]

    status, body = await rebook(visitor, credited, TUE_12)
    assert (status, code(body)) == (409, "already_rebooked")


async def test_only_credited_visits_of_ones_own_can_be_rebooked(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    plain = await ended_visit(services, world)
    credited = await ended_visit(services, world, credit=True, kiosk="a1-2")
    upcoming = await ended_visit(
        services, world, state="scheduled", credit=True, start=NOW + timedelta(days=3)
    )
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])

    status, body = await rebook(visitor, plain, TUE_10)
    assert (status, code(body)) == (409, "no_credit")
    status, body = await rebook(visitor, upcoming, TUE_10)
    assert (status, code(body)) == (409, "no_credit")
    status, body = await rebook(visitor, 999_999, TUE_10)
    assert status == 404

    other = await ApiUser.sign_in(client, world.emails["visitor2"])
    status, body = await rebook(other, credited, TUE_10)
    assert status == 404
    status, body = await rebook(visitor, credited, "2027-01-05T10:10:00-05:00")
    assert (status, code(body)) == (422, "not_a_slot")
    status, body = await rebook(visitor, credited, "not a time")
    assert status == 422
    assert (await stored(services, credited)).credit_flag is True


async def test_a_visit_failed_by_an_offline_kiosk_is_offered_a_free_rebooking(
    client: Client, services: Services, world: World, clock: ManualClock
) -> None:
    start = NOW - timedelta(minutes=15)
    visit_id = await ended_visit(
        services, world, state="ready", start=start, visitor_joined_at=start
    )

    report = await scheduler_pass(services, NOW)
    assert report.kiosk_offline == 1
    visit = await stored(services, visit_id)
    assert (visit.state, visit.end_reason, visit.credit_flag) == ("failed", "kiosk offline", True)
    [offer] = await mail_to(services, world.emails["visitor"], "visit_credit")
    assert "Reason: kiosk offline" in offer.body
    assert "Time lost" not in offer.body

    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    status, makeup = await rebook(visitor, visit_id, TUE_10)
    assert status == 201, makeup
    assert makeup["makeup_for_visit_id"] == visit_id
    # The scheduler does not offer twice.
    await scheduler_pass(services, NOW + timedelta(minutes=1))
    assert len(await mail_to(services, world.emails["visitor"], "visit_credit")) == 1
