"""Facility admins keep the roster: people are booked in, moved, released, transferred and
suspended; their booked visits are cancelled and each visitor is told why. Visitors find a
person only with both the booking number (with or without its prefix) and the last name."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.factories import ApiUser, World, add_visit
from tests.store_helpers import mail_to, visit_reason, visit_states
from vvserver.db.models import Approval, Person, VisitTransition
from vvserver.domain.people.directory_match import booking_key
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def test_admin_books_a_person_in_and_booking_numbers_are_unique_per_agency(
    client: Client, world: World, services: Services
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/facilities/{world.facility_a}/persons"
    new = {"booking_number": "a-5000", "first_name": "Sam", "last_name": "Rivera"}
    resp = await admin.post(path, json={**new, "unit_id": world.unit_a1, "pin": "4321"})
    assert resp.status == 201, await resp.text()
    person = await resp.json()
    assert person["booking_number"] == "A-5000"
    assert person["status"] == "active"
    assert person["has_pin"] is True
    # The same number again, even in another facility of the agency, is a conflict.
    resp = await admin.post(path, json={**new, "unit_id": world.unit_a2})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "booking_number_taken"
    agency_admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    resp = await agency_admin.post(
        f"/api/facilities/{world.facility_b}/persons",
        json={**new, "booking_number": "A-5000", "unit_id": world.unit_b1},
    )
    assert resp.status == 409
    # Another agency may use it.
    other = await ApiUser.sign_in(client, world.emails["admin_c"])
    async with services.read() as s:
        unit_c1 = (await s.get(Person, world.persons["pc1"])).unit_id  # type: ignore[union-attr]
    resp = await other.post(
        f"/api/facilities/{world.facility_c}/persons", json={**new, "unit_id": unit_c1}
    )
    assert resp.status == 201
    # A unit of another facility is refused; officers may not book people in.
    resp = await admin.post(
        path, json={**new, "booking_number": "A-5001", "unit_id": world.unit_b1}
    )
    assert resp.status == 422
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(
        path, json={**new, "booking_number": "A-5002", "unit_id": world.unit_a1}
    )
    assert resp.status == 403
    async with services.read() as s:
        stored = await s.get(Person, person["id"])
        assert stored is not None
        assert stored.pin_hash is not None
        assert "4321" not in stored.pin_hash
        assert services.passwords.verify(stored.pin_hash, "4321")


async def test_staff_search_their_roster_and_other_facilities_are_invisible(
    client: Client, world: World
) -> None:
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.get(f"/api/facilities/{world.facility_a}/persons", params={"q": "pa2"})
    assert [p["booking_number"] for p in await resp.json()] == ["A-1002"]
    resp = await officer.get(
        f"/api/facilities/{world.facility_a}/persons", params={"booking_number": "a-1001"}
    )
    assert [p["id"] for p in await resp.json()] == [world.persons["pa1"]]
    assert (await officer.get(f"/api/persons/{world.persons['pa1']}")).status == 200
    assert (await officer.get(f"/api/persons/{world.persons['pb1']}")).status == 404
    assert (await officer.get(f"/api/facilities/{world.facility_b}/persons")).status == 404
    assert (await officer.get("/api/persons/99999999999999")).status == 404
    resp = await officer.get(f"/api/facilities/{world.facility_a}/persons", params={"limit": "0"})
    assert resp.status == 422


async def test_release_cancels_future_visits_and_tells_each_visitor(
    client: Client, world: World, services: Services
) -> None:
    first = await add_visit(services, world, visitor="visitor")
    second = await add_visit(services, world, visitor="visitor2", starts_in=timedelta(days=2))
    other_person = await add_visit(services, world, person="pa2", kiosk="a2-1")
    finished = await add_visit(services, world, starts_in=timedelta(hours=-3), state="scheduled")
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await admin.post(
        f"/api/persons/{world.persons['pa1']}/release", json={"reason": "bail posted"}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["person"]["status"] == "released"
    assert body["cancelled_visits"] == 2
    assert await visit_states(services, first, second, other_person, finished) == [
        "cancelled",
        "cancelled",
        "scheduled",
        "scheduled",
    ]
    reason = await visit_reason(services, first)
    assert reason is not None
    assert "no longer in custody" in reason
    assert "bail" not in reason
    for key in ("visitor", "visitor2"):
        mails = await mail_to(services, world.emails[key], "visit_cancelled")
        assert len(mails) == 1
        assert "no longer in custody" in mails[0].body
    async with services.read() as s:
        transition = await s.scalar(
            select(VisitTransition).where(
                VisitTransition.visit_id == first, VisitTransition.to_state == "cancelled"
            )
        )
        assert transition is not None
        assert transition.actor == f"facility_admin:{world.accounts['admin_a']}"
    resp = await admin.post(f"/api/persons/{world.persons['pa1']}/release", json={})
    assert resp.status == 409


async def test_transfer_within_the_agency_moves_person_and_approvals(
    client: Client, world: World, services: Services
) -> None:
    booked = await add_visit(services, world)
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/persons/{world.persons['pa1']}/transfer"
    resp = await admin.post(
        path, json={"facility_id": world.facility_c, "unit_id": world.unit_b1, "reason": "x"}
    )
    assert resp.status == 404  # another agency
    resp = await admin.post(
        path, json={"facility_id": world.facility_b, "unit_id": world.unit_a2, "reason": "x"}
    )
    assert resp.status == 422  # unit not in the target facility
    resp = await admin.post(
        path,
        json={"facility_id": world.facility_b, "unit_id": world.unit_b1, "reason": "overcrowding"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["person"]["facility_id"] == world.facility_b
    assert body["person"]["status"] == "active"
    assert body["cancelled_visits"] == 1
    assert await visit_states(services, booked) == ["cancelled"]
    assert "transferred" in ((await visit_reason(services, booked)) or "")
    assert len(await mail_to(services, world.emails["visitor"], "visit_cancelled")) == 1
    async with services.read() as s:
        facilities = set(
            await s.scalars(
                select(Approval.facility_id).where(Approval.person_id == world.persons["pa1"])
            )
        )
    assert facilities == {world.facility_b}
    # The person is out of facility A's scope now.
    assert (await admin.get(f"/api/persons/{world.persons['pa1']}")).status == 404
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    resp = await admin_b.post(
        f"/api/persons/{world.persons['pa1']}/transfer", json={"reason": "to state prison"}
    )
    assert (await resp.json())["person"]["status"] == "transferred"


async def test_suspension_cancels_visits_before_it_ends_only(
    client: Client, world: World, services: Services
) -> None:
    soon = await add_visit(services, world, starts_in=timedelta(hours=3))
    later = await add_visit(services, world, visitor="visitor2", starts_in=timedelta(days=5))
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    until = services.clock.now() + timedelta(days=2)
    path = f"/api/persons/{world.persons['pa1']}"
    resp = await admin.post(
        f"{path}/suspend", json={"until": until.isoformat(), "reason": "fight in unit"}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["cancelled_visits"] == 1
    assert datetime.fromisoformat(body["person"]["visiting_suspended_until"]) == until
    assert await visit_states(services, soon, later) == ["cancelled", "scheduled"]
    mails = await mail_to(services, world.emails["visitor"], "visit_cancelled")
    assert "suspended until" in mails[0].body
    assert "fight" not in mails[0].body
    assert await mail_to(services, world.emails["visitor2"], "visit_cancelled") == []
    resp = await admin.post(
        f"{path}/suspend", json={"until": "2030-01-01T00:00:00", "reason": "naive time"}
    )
    assert resp.status == 422
    assert (await admin.post(f"{path}/unsuspend")).status == 200
    assert (await admin.post(f"{path}/unsuspend")).status == 409
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.post(f"{path}/suspend", json={"until": until.isoformat(), "reason": "r"})
    assert resp.status == 403


async def test_moving_units_cancels_visits_booked_at_the_old_units_kiosks(
    client: Client, world: World, services: Services
) -> None:
    booked = await add_visit(services, world, kiosk="a1-1")
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/persons/{world.persons['pa1']}"
    resp = await admin.patch(path, json={"unit_id": world.unit_b1})
    assert resp.status == 422
    resp = await admin.patch(path, json={"unit_id": world.unit_a2, "first_name": "Pat"})
    body = await resp.json()
    assert body["person"]["unit_id"] == world.unit_a2
    assert body["person"]["first_name"] == "Pat"
    assert body["cancelled_visits"] == 1
    assert await visit_states(services, booked) == ["cancelled"]


async def test_kiosk_pin_is_four_to_eight_digits(
    client: Client, world: World, services: Services
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/persons/{world.persons['pa2']}/pin"
    for bad in ("123", "123456789", "12a4", "١٢٣٤"):
        assert (await admin.put(path, json={"pin": bad})).status == 422
    assert (await admin.put(path, json={"pin": "987654"})).status == 204
    async with services.read() as s:
        person = await s.get(Person, world.persons["pa2"])
        assert person is not None
        assert services.passwords.verify(person.pin_hash, "987654")
        assert not services.passwords.verify(person.pin_hash, "987655")
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.put(path, json={"pin": "1234"})).status == 404


async def test_visitors_find_a_person_only_by_booking_number_and_last_name(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["newcomer"])
    path = f"/api/facilities/{world.facility_a}/directory"
    resp = await visitor.get(path, params={"last_name": " doe ", "booking_number": "a-1001"})
    assert resp.status == 200
    [entry] = await resp.json()
    # Nothing beyond what the visitor typed, and an opaque handle instead of the id.
    assert entry == {
        "handle": entry["handle"],
        "facility_id": world.facility_a,
        "last_name": "Doe",
        "booking_number": "A-1001",
    }
    resp = await visitor.get(path, params={"last_name": "Smith", "booking_number": "A-1001"})
    assert await resp.json() == []
    # The booking number of another facility does not match here.
    resp = await visitor.get(path, params={"last_name": "Doe", "booking_number": "B-2001"})
    assert await resp.json() == []
    assert (await visitor.get(path, params={"last_name": "Doe"})).status == 422
    assert (await visitor.get(path, params={"booking_number": "A-1001"})).status == 422
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    resp = await officer.get(path, params={"last_name": "Doe", "booking_number": "A-1001"})
    assert resp.status == 403
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    await admin.post(f"/api/persons/{world.persons['pa1']}/release", json={})
    resp = await visitor.get(path, params={"last_name": "Doe", "booking_number": "A-1001"})
    assert await resp.json() == []


async def test_moreno_is_found_by_24002_with_or_without_the_prefix_but_only_with_his_name(
    client: Client, world: World
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_b"])
    roster = f"/api/facilities/{world.facility_b}/persons"
    for number, first, last in (
        ("DC-24002", "Luis", "Moreno"),
        ("DC-24003", "Ana", "Peña"),
        ("DC-24117", "José", "Núñez"),
    ):
        resp = await admin.post(
            roster,
            json={
                "booking_number": number,
                "first_name": first,
                "last_name": last,
                "unit_id": world.unit_b1,
            },
        )
        assert resp.status == 201, await resp.text()
    visitor = await ApiUser.sign_in(client, world.emails["newcomer"])
    # The page shows the expected format: an invented number shaped like most of the roster's.
    resp = await visitor.get(f"/api/facilities/{world.facility_b}/directory/format")
    assert resp.status == 200
    assert await resp.json() == {"example": "DC-12345", "prefix": "DC", "digits": 5}
    path = f"/api/facilities/{world.facility_b}/directory"

    async def find(last_name: str, number: str) -> list[dict[str, object]]:
        resp = await visitor.get(path, params={"last_name": last_name, "booking_number": number})
        assert resp.status == 200, await resp.text()
        found: list[dict[str, object]] = await resp.json()
        return found

    for last_name, number in (
        ("moreno", "24002"),
        ("Moreno", "DC-24002"),
        ("MORENO", "dc24002"),
        (" moreno ", "dc 24 002"),
        ("pena", "24003"),
        ("PEÑA", "DC-24003"),
        ("nunez", "24117"),
    ):
        [entry] = await find(last_name, number)
        assert entry["booking_number"] in ("DC-24002", "DC-24003", "DC-24117")
        assert booking_key(str(entry["booking_number"])).endswith(booking_key(number))
    # Never a person who does not match both: another's number, a partial one, another name.
    for last_name, number in (
        ("moreno", "24003"),
        ("moreno", "2400"),
        ("moreno", "C24002"),
        ("moren", "24002"),
        ("pena", "24002"),
        ("doe", "24002"),
        ("moreno", "B-2001"),
    ):
        assert await find(last_name, number) == [], (last_name, number)
    # The same number without its prefix fits two people called Moreno: nobody is shown, the
    # whole number still finds the one it names.
    resp = await admin.post(
        roster,
        json={
            "booking_number": "XY-24002",
            "first_name": "Raúl",
            "last_name": "Moreno",
            "unit_id": world.unit_b1,
        },
    )
    assert resp.status == 201
    assert await find("moreno", "24002") == []
    [entry] = await find("moreno", "xy-24002")
    assert entry["booking_number"] == "XY-24002"
    [entry] = await find("moreno", "DC 24002")
    assert entry["booking_number"] == "DC-24002"
    # Only visitors ask, and only about a facility that exists.
    officer = await ApiUser.sign_in(client, world.emails["officer_b"])
    resp = await officer.get(f"/api/facilities/{world.facility_b}/directory/format")
    assert resp.status == 403
    assert (await visitor.get("/api/facilities/999999/directory/format")).status == 404
