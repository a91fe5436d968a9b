"""Visit now through real sockets: a visitor rings a kiosk, a resident rings a visitor's open
page, and each side answers; out-of-order and someone else's answers get typed errors; a ring
nobody answers ends as declined at its deadline, also after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse
from sqlalchemy import select

from tests.api.test_visit_now import kiosk_socket, open_visit_now
from tests.factories import ApiUser, World
from tests.signaling.conftest import VALID_OFFER, CallLog, Client, receive, receive_until
from tests.signaling.test_kiosk_channel import until
from tests.store_helpers import ManualClock
from vvserver.app import build_services
from vvserver.db.models import AuditEntry, Person, Visit, VisitTransition
from vvserver.domain.services import Services
from vvserver.scheduling.loop import scheduler_pass
from vvserver.scheduling.next_due import next_due_at


def cookie(user: ApiUser) -> dict[str, str]:
    return {"Cookie": f"vv_session={user.cookies['vv_session']}"}


@asynccontextmanager
async def visitor_page(
    client: Client, user: ApiUser, visit_id: int | None = None
) -> AsyncIterator[ClientWebSocketResponse]:
    """The visitor's page: on standby without a visit, else the visit's waiting room."""
    path = "/ws/visitor" if visit_id is None else f"/ws/visitor?visit_id={visit_id}"
    async with client.ws_connect(path, headers=cookie(user)) as ws:
        assert (await receive(ws))["type"] == "welcome"
        yield ws


async def send(ws: ClientWebSocketResponse, **message: Any) -> None:
    await ws.send_json({"v": 1, **message})


async def press_visit_now(visitor: ApiUser, world: World) -> dict[str, Any]:
    resp = await visitor.post(f"/api/persons/{world.persons['pa1']}/visit-now")
    assert resp.status == 201, await resp.text()
    booked: dict[str, Any] = await resp.json()
    return booked


async def visit_row(services: Services, visit_id: int) -> Visit:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return visit


async def test_a_visitor_rings_the_kiosk_and_the_resident_accepts(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    await open_visit_now(services, world, on_demand_minutes=15)
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    async with kiosk_socket(ws_client, world) as kiosk:
        booked = await press_visit_now(visitor, world)
        visit_id = booked["id"]
        ring = await receive_until(kiosk, "ring")
        assert ring["visit_id"] == visit_id
        assert (ring["direction"], ring["started_by"]) == ("incoming", "visitor")
        # The kiosk learns the visitor's first name and relationship, nothing more.
        assert (ring["visitor_first_name"], ring["relationship"]) == ("Visitor", "sibling")
        assert (ring["person_name"], ring["minutes"], ring["pin_required"]) == (
            "PA1 Doe",
            15,
            False,
        )
        assert "visitor@example.net" not in str(ring)

        async with visitor_page(ws_client, visitor, visit_id) as page:
            status = await receive_until(page, "visit_status")
            assert status["state"] == "ringing"
            # The visitor who rang cannot answer their own ring, nor join before the answer.
            await send(page, type="ring_accept", visit_id=visit_id)
            refused = await receive_until(page, "error")
            assert (refused["code"], refused["ref"]) == ("not_the_callee", "ring_accept")

            await send(kiosk, type="ring_accept", visit_id=visit_id)
            assert await receive_until(kiosk, "ok") == {
                "v": 1,
                "type": "ok",
                "ref": "ring_accept",
                "visit_id": visit_id,
            }
            assert (await receive_until(kiosk, "ring_ended"))["outcome"] == "accepted"
            start = await receive_until(kiosk, "visit_start")
            assert (start["visit_id"], start["pin_required"]) == (visit_id, False)
            assert (await receive_until(page, "ring_ended"))["outcome"] == "accepted"
            assert (await receive_until(page, "visit_status"))["state"] == "ready"

            # Answering again is out of order: the ring is over.
            await send(kiosk, type="ring_decline", visit_id=visit_id)
            assert (await receive_until(kiosk, "error"))["code"] == "ring_over"
            await send(kiosk, type="offer", visit_id=visit_id, sdp=VALID_OFFER)
            assert (await receive_until(kiosk, "answer"))["visit_id"] == visit_id

    visit = await visit_row(services, visit_id)
    assert visit.state == "ready"
    assert visit.ring_until is None
    assert visit.end_at - visit.start_at == timedelta(minutes=15)  # the full length from the answer
    assert abs((visit.start_at - services.clock.now()).total_seconds()) < 5
    assert media.joins == [(visit_id, "kiosk", VALID_OFFER)]
    async with services.read() as s:
        actions = set(
            await s.scalars(
                select(AuditEntry.action).where(AuditEntry.target == f"visit:{visit_id}")
            )
        )
        states = [
            (t.from_state, t.to_state)
            for t in await s.scalars(
                select(VisitTransition)
                .where(VisitTransition.visit_id == visit_id)
                .order_by(VisitTransition.id)
            )
        ]
    assert {"visit.on_demand.start", "visit.ring.accept"} <= actions
    assert states == [(None, "ringing"), ("ringing", "ready")]


async def test_only_the_rung_kiosk_answers_and_a_decline_uses_no_visit(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world, max_visits_per_visitor_week=1)
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    async with (
        kiosk_socket(ws_client, world, "a1-1") as kiosk,
        kiosk_socket(ws_client, world, "a1-2") as other,
    ):
        visit_id = (await press_visit_now(visitor, world))["id"]
        await receive_until(kiosk, "ring")
        await send(other, type="ring_accept", visit_id=visit_id)
        assert (await receive_until(other, "error"))["code"] == "not_found"
        await send(kiosk, type="ring_accept", visit_id=2**31 - 1)
        assert (await receive_until(kiosk, "error"))["code"] == "not_found"
        await send(kiosk, type="ring_accept", visit_id="1")  # a string is not an id
        assert (await receive_until(kiosk, "error"))["code"] == "invalid_message"
        await send(kiosk, type="ring_decline", visit_id=visit_id)
        assert (await receive_until(kiosk, "ring_ended"))["outcome"] == "declined"
    visit = await visit_row(services, visit_id)
    assert (visit.state, visit.end_reason) == ("declined", "declined by the resident")
    assert visit.counts_toward_limit is False
    # The weekly limit of one is still free: a declined ring used nothing.
    async with kiosk_socket(ws_client, world):
        status = await (await visitor.get(f"/api/persons/{world.persons['pa1']}/visit-now")).json()
    assert status["available"] is True, status


async def test_the_kiosk_gives_the_pin_with_its_answer_where_the_unit_asks_for_it(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world, kiosk_pin_required=True)
    pin_hash = services.passwords.hash("2468")
    async with services.write() as s:
        person = await s.get(Person, world.persons["pa1"])
        assert person is not None
        person.pin_hash = pin_hash
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    async with kiosk_socket(ws_client, world) as kiosk:
        visit_id = (await press_visit_now(visitor, world))["id"]
        assert (await receive_until(kiosk, "ring"))["pin_required"] is True
        await send(kiosk, type="ring_accept", visit_id=visit_id)
        assert (await receive_until(kiosk, "error"))["code"] == "pin_required"
        await send(kiosk, type="ring_accept", visit_id=visit_id, pin="1111")
        wrong = await receive_until(kiosk, "error")
        assert (wrong["code"], wrong["details"]) == ("wrong_pin", {"tries_left": 4})
        await send(kiosk, type="ring_accept", visit_id=visit_id, pin="2468")
        assert (await receive_until(kiosk, "ring_ended"))["outcome"] == "accepted"
        start = await receive_until(kiosk, "visit_start")
        assert start["pin_required"] is False  # given with the answer: not asked again
    assert (await visit_row(services, visit_id)).state == "ready"


async def test_a_resident_rings_a_visitor_whose_page_is_open(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    other = await ApiUser.sign_in(ws_client, world.emails["visitor2"])  # approved, page closed
    async with kiosk_socket(ws_client, world) as kiosk, visitor_page(ws_client, visitor) as page:
        await send(kiosk, type="ring_visitor", approval_id=1)
        assert (await receive_until(kiosk, "error"))["code"] == "resident_signed_out"
        await send(kiosk, type="resident_sign_in", booking_number="B-2001")  # another unit
        assert (await receive_until(kiosk, "error"))["code"] == "not_found"

        await send(kiosk, type="resident_sign_in", booking_number="a-1001")
        listed = await receive_until(kiosk, "available_visitors")
        assert (listed["person_name"], listed["visitors"]) == ("PA1 Doe", [])

        await send(page, type="availability", available=True)
        assert (await receive_until(page, "availability"))["available"] is True
        assert services.available_visitors.is_available(world.accounts["visitor"])
        assert not services.available_visitors.is_available(world.accounts["visitor2"])
        await send(kiosk, type="get_available")
        [shown] = (await receive_until(kiosk, "available_visitors"))["visitors"]
        assert set(shown) == {"approval_id", "first_name", "relationship"}
        assert (shown["first_name"], shown["relationship"]) == ("Visitor", "sibling")

        await send(kiosk, type="ring_visitor", approval_id=shown["approval_id"])
        visit_id = (await receive_until(kiosk, "ok"))["visit_id"]
        outgoing = await receive_until(kiosk, "ring")
        assert (outgoing["direction"], outgoing["started_by"]) == ("outgoing", "kiosk")
        incoming = await receive_until(page, "ring")
        assert (incoming["visit_id"], incoming["direction"]) == (visit_id, "incoming")
        assert (incoming["person_name"], incoming["facility_name"]) == (
            "PA1 Doe",
            "Demo County Jail",
        )
        # The kiosk that rang may withdraw, not accept; the visitor accepts.
        await send(kiosk, type="ring_accept", visit_id=visit_id)
        assert (await receive_until(kiosk, "error"))["code"] == "not_the_callee"
        await send(page, type="ring_accept", visit_id=visit_id)
        assert (await receive_until(page, "ok"))["ref"] == "ring_accept"
        assert (await receive_until(page, "ring_ended"))["outcome"] == "accepted"
        assert (await receive_until(kiosk, "ring_ended"))["outcome"] == "accepted"
        assert (await receive_until(kiosk, "visit_start"))["visit_id"] == visit_id
        # The resident was signed out by the ring: the next call needs a new sign-in.
        await send(kiosk, type="get_available")
        assert (await receive_until(kiosk, "error"))["code"] == "resident_signed_out"

        await send(page, type="availability", available=False)
        await receive_until(page, "availability")
        assert not services.available_visitors.is_available(world.accounts["visitor"])
        await send(page, type="offer", sdp=VALID_OFFER)  # a standby page joins no call
        assert (await receive_until(page, "error"))["code"] == "visit_required"
    visit = await visit_row(services, visit_id)
    assert (visit.state, visit.on_demand, visit.visitor_id) == (
        "ready",
        "kiosk",
        world.accounts["visitor"],
    )
    assert other.cookies  # signed in, yet never listed: their page was not open


async def test_a_visitor_who_is_not_available_cannot_be_rung_and_closing_the_page_ends_it(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    async with kiosk_socket(ws_client, world) as kiosk:
        async with visitor_page(ws_client, visitor) as page:
            await send(page, type="availability", available=True)
            await receive_until(page, "availability")
            await send(kiosk, type="resident_sign_in", booking_number="A-1001")
            [shown] = (await receive_until(kiosk, "available_visitors"))["visitors"]
        await until(lambda: not services.available_visitors.is_available(world.accounts["visitor"]))
        await send(kiosk, type="ring_visitor", approval_id=shown["approval_id"])
        assert (await receive_until(kiosk, "error"))["code"] == "visitor_not_available"
    async with services.read() as s:
        assert (await s.scalar(select(Visit.id).where(Visit.on_demand.is_not(None)))) is None


async def test_a_ring_nobody_answers_ends_as_declined_at_its_deadline_even_after_a_restart(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    async with kiosk_socket(ws_client, world) as kiosk:
        visit_id = (await press_visit_now(visitor, world))["id"]
        await receive_until(kiosk, "ring")
    ring_until = (await visit_row(services, visit_id)).ring_until
    assert ring_until is not None
    # The scheduler sleeps until exactly that deadline.
    assert await next_due_at(services, services.clock.now()) == ring_until

    # The server restarts: a new process, the same database, 61 seconds later.
    restarted = build_services(services.settings, passwords=services.passwords)
    restarted.clock = ManualClock(ring_until + timedelta(seconds=1))
    try:
        early = await scheduler_pass(restarted, ring_until - timedelta(seconds=1))
        assert early.rings_missed == 0
        report = await scheduler_pass(restarted, ring_until)
        assert report.rings_missed == 1
    finally:
        await restarted.db.close()
    visit = await visit_row(services, visit_id)
    assert (visit.state, visit.end_reason) == ("declined", "not answered in time")
    assert visit.counts_toward_limit is False
    assert visit.missing_side is None  # not a no-show
