"""Where the facility asks for it, the person in custody types their PIN before the kiosk joins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import ClientWebSocketResponse
from sqlalchemy import select

from tests.factories import World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    receive,
    receive_until,
    start_event,
    visit_with_link,
)
from tests.signaling.test_kiosk_channel import bearer
from tests.signaling.test_officer_channel import staff_headers
from vvserver.db.models import AuditEntry, Facility, HousingUnit, Person
from vvserver.domain.clock import Clock
from vvserver.domain.services import Services
from vvserver.signaling.kiosk_pin import MAX_WRONG_PINS, PIN_LOCK

PIN = "2468"


@dataclass
class ShiftedClock:
    """The real clock, moved forward by ``ahead`` (to let a PIN lock run out)."""

    real: Clock
    ahead: timedelta = timedelta(0)

    def now(self) -> datetime:
        return self.real.now() + self.ahead


async def require_pins(services: Services, world: World, *, pins: dict[str, str]) -> None:
    async with services.write() as s:
        facility = await s.get(Facility, world.facility_a)
        assert facility is not None
        facility.rules = {**facility.rules, "kiosk_pin_required": True}
        for person, pin in pins.items():
            row = await s.get(Person, world.persons[person])
            assert row is not None
            row.pin_hash = services.passwords.hash(pin)


async def send(ws: ClientWebSocketResponse, **message: object) -> dict[str, object]:
    await ws.send_json({"v": 1, **message})
    reply = await receive(ws)
    while reply["type"] in ("participant", "quality", "visit_warning"):
        reply = await receive(ws)
    return reply


async def pin_audit(services: Services, visit_id: int) -> list[tuple[str, str]]:
    async with services.read() as s:
        rows = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"visit:{visit_id}")
            .order_by(AuditEntry.seq)
        )
        return [(a.action, a.outcome) for a in rows]


async def test_the_kiosk_joins_once_the_persons_pin_is_confirmed(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    await require_pins(services, world, pins={"pa1": PIN})
    visit_id, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    async with ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk:
        await receive(kiosk)
        schedule = await receive(kiosk)
        assert [(v["id"], v["pin_required"]) for v in schedule["visits"]] == [(visit_id, True)]
        services.events.publish(await start_event(services, visit_id))
        start = await receive_until(kiosk, "visit_start")
        assert start["pin_required"] is True

        offer = {"type": "offer", "visit_id": visit_id, "sdp": VALID_OFFER}
        refused = await send(kiosk, **offer)
        assert (refused["type"], refused["code"]) == ("error", "pin_required")
        assert media.joins == []
        wrong = await send(kiosk, type="pin_confirm", visit_id=visit_id, pin="1111")
        assert (wrong["code"], wrong["ref"]) == ("wrong_pin", "pin_confirm")
        assert "4 tries left" in str(wrong["message"])
        assert wrong["details"] == {"tries_left": 4}  # for the page, in its own language
        accepted = await send(kiosk, type="pin_confirm", visit_id=visit_id, pin=PIN)
        assert accepted == {"v": 1, "type": "pin_accepted", "visit_id": visit_id}
        assert (await send(kiosk, **offer))["type"] == "answer"
    # A kiosk that reconnects during the visit is not asked again.
    async with ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk:
        await receive_until(kiosk, "schedule")
        assert (await send(kiosk, **offer))["type"] == "answer"
    assert [role for _, role, _ in media.joins] == ["kiosk", "kiosk"]
    assert await pin_audit(services, visit_id) == [
        ("kiosk.pin_confirm", "failure"),
        ("kiosk.pin_confirm", "success"),
    ]


async def test_wrong_pins_lock_the_visit_for_a_while_and_alert_the_officer(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    await require_pins(services, world, pins={"pa1": PIN})
    visit_id, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    clock = ShiftedClock(services.clock)
    services.clock = clock
    officer_headers = await staff_headers(ws_client, world, "officer_a")
    async with (
        ws_client.ws_connect("/ws/officer", headers=officer_headers) as officer,
        ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk,
    ):
        await receive_until(officer, "live_snapshot")
        await receive_until(kiosk, "schedule")
        codes = [
            (await send(kiosk, type="pin_confirm", visit_id=visit_id, pin=f"000{n}"))["code"]
            for n in range(MAX_WRONG_PINS)
        ]
        assert codes == ["wrong_pin"] * (MAX_WRONG_PINS - 1) + ["pin_locked"]
        alert = await receive_until(officer, "alert")
        assert (alert["code"], alert["visit_id"]) == ("pin_locked", visit_id)
        # Locked: even the right PIN is not checked, and the kiosk cannot join.
        locked = await send(kiosk, type="pin_confirm", visit_id=visit_id, pin=PIN)
        assert locked["code"] == "pin_locked"
        offer = {"type": "offer", "visit_id": visit_id, "sdp": VALID_OFFER}
        assert (await send(kiosk, **offer))["code"] == "pin_required"

        clock.ahead = PIN_LOCK + timedelta(seconds=1)
        accepted = await send(kiosk, type="pin_confirm", visit_id=visit_id, pin=PIN)
        assert accepted["type"] == "pin_accepted"
        assert (await send(kiosk, **offer))["type"] == "answer"
    audit = await pin_audit(services, visit_id)
    assert audit.count(("kiosk.pin_locked", "failure")) == 1
    assert audit.count(("kiosk.pin_confirm", "failure")) == MAX_WRONG_PINS + 1
    assert audit[-1] == ("kiosk.pin_confirm", "success")


async def test_no_pin_set_other_kiosks_and_facilities_without_the_rule(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    await require_pins(services, world, pins={})  # pa2 has no PIN
    no_pin, _ = await visit_with_link(
        services, world, starts_in=timedelta(minutes=-1), person="pa2", kiosk="a2-1"
    )
    elsewhere, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    annex, _ = await visit_with_link(
        services, world, starts_in=timedelta(minutes=-1), person="pb1", kiosk="b1-1"
    )
    officer_headers = await staff_headers(ws_client, world, "officer_a")
    async with (
        ws_client.ws_connect("/ws/officer", headers=officer_headers) as officer,
        ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a2-1")) as kiosk,
    ):
        await receive_until(officer, "live_snapshot")
        await receive_until(kiosk, "schedule")
        reply = await send(kiosk, type="pin_confirm", visit_id=no_pin, pin="1234")
        assert reply["code"] == "pin_not_set"
        assert (await receive_until(officer, "alert"))["code"] == "pin_not_set"
        offer = {"type": "offer", "visit_id": no_pin, "sdp": VALID_OFFER}
        assert (await send(kiosk, **offer))["code"] == "pin_required"
        reply = await send(kiosk, type="pin_confirm", visit_id=elsewhere, pin="1234")
        assert reply["code"] == "not_found"  # another kiosk's visit
        # Staff lift the rule for the unit: the kiosk joins without a PIN.
        async with services.write() as s:
            unit = await s.get(HousingUnit, world.unit_a2)
            assert unit is not None
            unit.rules_override = {**(unit.rules_override or {}), "kiosk_pin_required": False}
        assert (await send(kiosk, **offer))["type"] == "answer"
        reply = await send(kiosk, type="pin_confirm", visit_id=no_pin, pin="1234")
        assert reply["code"] == "pin_not_required"
    # Facility B never asked for PINs.
    async with ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "b1-1")) as kiosk:
        schedule = await receive_until(kiosk, "schedule")
        assert [v["pin_required"] for v in schedule["visits"]] == [False]
        offer = {"type": "offer", "visit_id": annex, "sdp": VALID_OFFER}
        assert (await send(kiosk, **offer))["type"] == "answer"
    assert await pin_audit(services, no_pin) == [("kiosk.pin_confirm", "failure")]
