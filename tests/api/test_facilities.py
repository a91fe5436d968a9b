"""An agency admin sets up a facility (time zone, rules, units, kiosks), admins close it for
blackouts and manage staff; every change stays inside the caller's facility or agency."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.factories import ApiUser, World, add_visit
from tests.store_helpers import mail_to, visit_reason, visit_states
from vvserver.db.models import AuditEntry, Kiosk
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]

WEEKDAYS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


async def test_agency_admin_creates_a_facility_in_a_real_time_zone(
    client: Client, world: World, services: Services
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    resp = await admin.post(
        "/api/facilities", json={"name": "North Annex", "timezone": "Mars/Olympus_Mons"}
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "unknown_timezone"
    resp = await admin.post(
        "/api/facilities", json={"name": "North Annex", "timezone": "../../etc/passwd"}
    )
    assert resp.status == 422
    resp = await admin.post(
        "/api/facilities",
        json={"name": "North Annex", "timezone": "America/Detroit", "rules": {"windows": WEEKDAYS}},
    )
    assert resp.status == 201, await resp.text()
    facility = await resp.json()
    assert facility["agency_id"] == world.agency_id
    assert facility["timezone"] == "America/Detroit"
    assert facility["rules"]["windows"][0] == {"weekday": 0, "start": "09:00", "end": "17:00"}
    assert facility["rules"]["slot_minutes"] == 30
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert "facility.create" in actions
    # Facility admins cannot create facilities; agency admins see their agency only.
    facility_admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await facility_admin.post("/api/facilities", json={"name": "X", "timezone": "UTC"})
    assert resp.status == 403
    listed = await (await admin.get("/api/facilities")).json()
    assert {f["id"] for f in listed} == {world.facility_a, world.facility_b, facility["id"]}
    listed = await (await facility_admin.get("/api/facilities")).json()
    assert [f["id"] for f in listed] == [world.facility_a]
    # Visitors search every facility by name, to ask for a visit.
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    listed = await (await visitor.get("/api/facilities", params={"q": "other county"})).json()
    assert [f["id"] for f in listed] == [world.facility_c]
    assert (await visitor.get(f"/api/facilities/{world.facility_c}")).status == 200
    assert (await visitor.patch(f"/api/facilities/{world.facility_a}", json={})).status == 403


async def test_rules_are_validated_and_only_admins_change_them(
    client: Client, world: World
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/facilities/{world.facility_a}/rules"
    bad_rules = [
        {"windows": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
        {"windows": [{"weekday": 1, "start": "10:00", "end": "09:00"}]},
        {"windows": [{"weekday": 1, "start": "10:00:30", "end": "11:00"}]},
        {"windows": WEEKDAYS, "slot_minutes": 4},
        {"windows": WEEKDAYS, "slot_minutes": 241},
        {"windows": WEEKDAYS, "buffer_minutes": 121},
        {"windows": WEEKDAYS, "lead_max_days": 91},
        {"windows": WEEKDAYS, "lead_min_minutes": -1},
        {"windows": WEEKDAYS, "max_visits_per_person_week": -1},
        {"windows": WEEKDAYS, "lead_min_minutes": 3 * 24 * 60, "lead_max_days": 2},
        {"windows": [*WEEKDAYS, {"weekday": 0, "start": "16:00", "end": "18:00"}]},
        {"windows": WEEKDAYS, "surprise": 1},
        {"slot_minutes": 30},
    ]
    for rules in bad_rules:
        resp = await admin.put(path, json=rules)
        assert resp.status == 422, rules
    good = {
        "windows": [*WEEKDAYS, {"weekday": 5, "start": "18:00", "end": "00:00"}],
        "slot_minutes": 20,
        "buffer_minutes": 10,
        "lead_min_minutes": 60,
        "lead_max_days": 30,
        "warning_seconds": [120],
        "no_show_minutes": 5,
        "retention_days": 180,
    }
    resp = await admin.put(path, json=good)
    assert resp.status == 200, await resp.text()
    facility = await (await admin.get(f"/api/facilities/{world.facility_a}")).json()
    assert facility["rules"]["slot_minutes"] == 20
    assert facility["rules"]["windows"][-1] == {"weekday": 5, "start": "18:00", "end": "00:00"}
    assert facility["rules"]["retention_days"] == 180
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.put(path, json=good)).status == 403
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.put(path, json=good)).status == 404
    resp = await admin.patch(f"/api/facilities/{world.facility_a}", json={"timezone": "Nowhere/X"})
    assert resp.status == 422
    resp = await admin.patch(f"/api/facilities/{world.facility_a}", json={"name": "Main Jail"})
    assert (await resp.json())["name"] == "Main Jail"


async def test_unit_rules_override_part_of_the_facility_rules(client: Client, world: World) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await admin.post(f"/api/facilities/{world.facility_a}/units", json={"name": "Medical"})
    assert resp.status == 201
    unit = await resp.json()
    resp = await admin.post(f"/api/facilities/{world.facility_a}/units", json={"name": "Medical"})
    assert resp.status == 409
    path = f"/api/units/{unit['id']}/rules"
    resp = await admin.put(path, json={"slot_minutes": 15})
    assert (await resp.json())["effective_rules"]["slot_minutes"] == 15
    resp = await admin.put(path, json={"buffer_minutes": 5})
    body = await resp.json()
    assert body["rules_override"] == {"slot_minutes": 15, "buffer_minutes": 5}
    assert body["effective_rules"]["slot_minutes"] == 15
    resp = await admin.put(path, json={"slot_minutes": None})
    body = await resp.json()
    assert body["rules_override"] == {"buffer_minutes": 5}
    assert body["effective_rules"]["slot_minutes"] == 30
    assert (await admin.put(path, json={"slot_minutes": 500})).status == 422
    # An override that contradicts the facility's rules is refused.
    assert (await admin.put(path, json={"lead_min_minutes": 6 * 24 * 60 * 10})).status == 422
    units = await (await admin.get(f"/api/facilities/{world.facility_a}/units")).json()
    assert {u["name"] for u in units} == {"A1", "A2", "Medical"}
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.put(path, json={"slot_minutes": 15})).status == 404


async def test_kiosk_token_is_shown_once_and_rotation_retires_the_old_one(
    client: Client, world: World, services: Services
) -> None:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/facilities/{world.facility_a}/kiosks"
    resp = await admin.post(path, json={"unit_id": world.unit_b1, "name": "Wrong unit"})
    assert resp.status == 422
    resp = await admin.post(path, json={"unit_id": world.unit_a2, "name": "A2-2"})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    kiosk_id, token = created["kiosk"]["id"], created["token"]
    assert token.startswith(f"k{kiosk_id}.")
    assert len(token) > 40
    async with services.read() as s:
        stored = await s.get(Kiosk, kiosk_id)
        assert stored is not None
        assert stored.credential_hash == token_hash(token)
    listed = await (await admin.get(path)).json()
    assert token not in str(listed)
    assert {k["name"] for k in listed} >= {"A2-2", "a1-1"}
    resp = await admin.post(f"/api/kiosks/{kiosk_id}/rotate")
    assert resp.status == 200
    new_token = (await resp.json())["token"]
    assert new_token != token
    assert new_token.startswith(f"k{kiosk_id}.")
    async with services.read() as s:
        stored = await s.get(Kiosk, kiosk_id)
        assert stored is not None
        assert stored.credential_hash == token_hash(new_token)
        assert stored.credential_hash != token_hash(token)
    resp = await admin.patch(f"/api/kiosks/{kiosk_id}", json={"enabled": False, "name": "A2-spare"})
    kiosk = await resp.json()
    assert kiosk["enabled"] is False
    assert kiosk["name"] == "A2-spare"
    assert kiosk["last_seen_at"] is None
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.get(path)).status == 200
    assert (await officer.post(f"/api/kiosks/{kiosk_id}/rotate")).status == 403
    assert (await officer.get(f"/api/facilities/{world.facility_b}/kiosks")).status == 404
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.post(f"/api/kiosks/{kiosk_id}/rotate")).status == 404
    assert (await admin_b.patch(f"/api/kiosks/{kiosk_id}", json={"enabled": True})).status == 404


async def test_a_blackout_cancels_only_the_visits_it_covers(
    client: Client, world: World, services: Services
) -> None:
    in_a1 = await add_visit(services, world, kiosk="a1-1", starts_in=timedelta(hours=2))
    after = await add_visit(services, world, kiosk="a1-2", starts_in=timedelta(hours=8))
    in_a2 = await add_visit(
        services,
        world,
        person="pa2",
        visitor="visitor2",
        kiosk="a2-1",
        starts_in=timedelta(hours=2),
    )
    in_b = await add_visit(
        services, world, person="pb1", kiosk="b1-1", starts_in=timedelta(hours=2)
    )
    now = services.clock.now()
    window = {
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=4)).isoformat(),
    }
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/facilities/{world.facility_a}/blackouts"
    resp = await admin.post(
        path, json={**window, "reason": "Water main repair in A1", "unit_id": world.unit_a1}
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["cancelled_visits"] == 1
    assert await visit_states(services, in_a1, after, in_a2, in_b) == [
        "cancelled",
        "scheduled",
        "scheduled",
        "scheduled",
    ]
    assert await visit_reason(services, in_a1) == "Water main repair in A1"
    mails = await mail_to(services, world.emails["visitor"], "visit_cancelled")
    assert len(mails) == 1
    assert "Water main repair in A1" in mails[0].body
    resp = await admin.post(path, json={**window, "reason": "Facility lockdown"})
    assert (await resp.json())["cancelled_visits"] == 1
    blackout_id = (await resp.json())["blackout"]["id"]
    assert await visit_states(services, after, in_a2, in_b) == [
        "scheduled",
        "cancelled",
        "scheduled",
    ]
    # Bad periods are refused.
    resp = await admin.post(
        path, json={"starts_at": window["ends_at"], "ends_at": window["starts_at"], "reason": "x"}
    )
    assert resp.status == 422
    resp = await admin.post(path, json={**window, "reason": "x", "unit_id": world.unit_b1})
    assert resp.status == 422
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert len(await (await officer.get(path)).json()) == 2
    assert (await officer.post(path, json={**window, "reason": "x"})).status == 403
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.delete(f"/api/blackouts/{blackout_id}")).status == 404
    assert (await admin.delete(f"/api/blackouts/{blackout_id}")).status == 204
    assert len(await (await officer.get(path)).json()) == 1


async def test_admins_manage_staff_within_their_scope(
    client: Client, world: World, services: Services
) -> None:
    facility_admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    new_officer = {
        "email": "New.Officer@example.org",
        "name": "New Officer",
        "role": "officer",
        "facility_id": world.facility_a,
        "password": "a long staff passphrase",
    }
    resp = await facility_admin.post("/api/staff", json=new_officer)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["email"] == "new.officer@example.org"
    assert (await facility_admin.post("/api/staff", json=new_officer)).status == 409
    weak = {**new_officer, "email": "weak@example.org", "password": "short"}
    assert (await facility_admin.post("/api/staff", json=weak)).status == 422
    elsewhere = {**new_officer, "email": "b@example.org", "facility_id": world.facility_b}
    assert (await facility_admin.post("/api/staff", json=elsewhere)).status == 404
    boss = {**new_officer, "email": "boss@example.org", "role": "agency_admin", "facility_id": None}
    assert (await facility_admin.post("/api/staff", json=boss)).status == 403
    agency_admin = await ApiUser.sign_in(client, world.emails["agency_admin"])
    assert (await agency_admin.post("/api/staff", json=elsewhere)).status == 201
    assert (await agency_admin.post("/api/staff", json=boss)).status == 201
    listed = await (await facility_admin.get("/api/staff")).json()
    assert {a["email"] for a in listed} == {
        "admin_a@example.org",
        "officer_a@example.org",
        "new.officer@example.org",
    }
    listed = await (await agency_admin.get("/api/staff")).json()
    assert "b@example.org" in {a["email"] for a in listed}
    assert "admin_c@example.org" not in {a["email"] for a in listed}
    # Deactivation ends the account's sessions at once.
    officer = await ApiUser.sign_in(client, "new.officer@example.org", "a long staff passphrase")
    assert (await officer.get(f"/api/facilities/{world.facility_a}/units")).status == 200
    assert (await officer.get("/api/staff")).status == 403
    resp = await facility_admin.post(f"/api/staff/{created['id']}/deactivate")
    assert resp.status == 200
    assert (await resp.json())["active"] is False
    assert (await officer.get(f"/api/facilities/{world.facility_a}/units")).status == 401
    assert (await facility_admin.post(f"/api/staff/{created['id']}/deactivate")).status == 409
    resp = await facility_admin.post(f"/api/staff/{world.accounts['officer_b']}/deactivate")
    assert resp.status == 404
    resp = await facility_admin.post(f"/api/staff/{world.accounts['visitor']}/deactivate")
    assert resp.status == 404
    resp = await facility_admin.post(f"/api/staff/{world.accounts['admin_a']}/deactivate")
    assert resp.status == 409
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert actions.count("staff.create") == 3
    assert "staff.deactivate" in actions


async def test_objects_of_other_facilities_are_not_found(client: Client, world: World) -> None:
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.get(f"/api/facilities/{world.facility_b}")).status == 404
    assert (await officer.get(f"/api/facilities/{world.facility_b}/units")).status == 404
    assert (await officer.get(f"/api/facilities/{world.facility_b}/blackouts")).status == 404
    assert (await officer.get("/api/facilities/2147483648")).status == 404
    assert (await officer.get("/api/facilities/abc")).status == 404
    admin_c = await ApiUser.sign_in(client, world.emails["admin_c"])
    assert (await admin_c.get(f"/api/facilities/{world.facility_a}/kiosks")).status == 404
    resp = await admin_c.post(f"/api/kiosks/{world.kiosks['a1-1']}/rotate")
    assert resp.status == 404
