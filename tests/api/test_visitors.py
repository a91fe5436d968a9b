"""A visitor uploads a photo of their ID; an administrator checks it and the visitor hears the
result. Admins ban visitors who misbehave; bans cancel their visits at that facility."""

from __future__ import annotations

import io
import stat
import struct
import zlib
from datetime import timedelta

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import select

from tests.factories import ApiUser, World, add_visit
from tests.store_helpers import mail_to, visit_reason, visit_states
from vvserver.db.models import Account, AuditEntry
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 180, 40)).save(out, format="JPEG")
    return out.getvalue()


JPEG = small_jpeg()


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def upload(user: ApiUser, data: bytes, content_type: str) -> ClientResponse:
    response: ClientResponse = await user.put(
        "/api/me/id-photo", data=data, headers={"Content-Type": content_type}
    )
    return response


async def test_visitor_uploads_an_id_photo_that_must_really_be_an_image(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["newcomer"])
    png = tiny_png()
    resp = await upload(visitor, JPEG, "image/png")
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "content_type_mismatch"
    resp = await upload(visitor, b"GIF89a not allowed", "image/png")
    assert (await resp.json())["error"]["code"] == "not_an_image"
    resp = await upload(visitor, b"", "image/jpeg")
    assert resp.status == 422
    resp = await upload(visitor, png, "text/plain")
    assert resp.status == 415
    resp = await upload(visitor, png + b"\x00" * (5 * 1024 * 1024), "image/png")
    assert resp.status == 413
    photo_dir = services.settings.data_dir / "id-photos"
    assert list(photo_dir.iterdir()) == []

    resp = await upload(visitor, png, "image/png")
    assert resp.status == 200, await resp.text()
    profile = await resp.json()
    assert profile["id_status"] == "pending"
    assert profile["has_id_photo"] is True
    [first] = list(photo_dir.iterdir())
    assert first.read_bytes() == png  # this one has no metadata: encoded again, the same bytes
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    async with services.read() as s:
        account = await s.get(Account, world.accounts["newcomer"])
        assert account is not None
        assert account.id_photo_type == "image/png"
        assert account.id_photo_path is not None
        assert first.name in account.id_photo_path
    # A new photo replaces the old file.
    resp = await upload(visitor, JPEG, "image/jpeg")
    assert resp.status == 200
    [second] = list(photo_dir.iterdir())
    assert second != first
    assert second.suffix == ".jpg"
    staff = await ApiUser.sign_in(client, world.emails["admin_a"])
    assert (await upload(staff, png, "image/png")).status == 403


async def test_visitor_reads_and_edits_their_profile(client: Client, world: World) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    me = await (await visitor.get("/api/me")).json()
    assert me["email"] == world.emails["visitor"]
    assert me["id_status"] == "verified"
    assert me["has_id_photo"] is False
    resp = await visitor.patch("/api/me", json={"name": "Maria Lopez", "phone": "+1 555 0111"})
    assert (await resp.json())["name"] == "Maria Lopez"
    assert (await visitor.patch("/api/me", json={"phone": "call me"})).status == 422
    assert (await visitor.patch("/api/me", json={"email": "x@example.org"})).status == 422
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.get("/api/me")).status == 403


async def test_admin_checks_the_id_and_the_visitor_is_emailed_the_result(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    png = tiny_png()
    assert (await upload(visitor, png, "image/png")).status == 200
    visitor_id = world.accounts["visitor2"]
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    resp = await admin.get(f"/api/visitors/{visitor_id}/id-photo")
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert await resp.read() == png
    seen = await (await admin.get(f"/api/visitors/{visitor_id}")).json()
    assert seen["id_status"] == "pending"
    assert [a["person_id"] for a in seen["approvals"]] == [world.persons["pa1"]]

    path = f"/api/visitors/{visitor_id}/id-check"
    assert (await admin.post(path, json={"decision": "rejected"})).status == 422
    resp = await admin.post(path, json={"decision": "rejected", "reason": "Photo is blurred"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["id_status"] == "rejected"
    me = await (await visitor.get("/api/me")).json()
    assert me["id_reject_reason"] == "Photo is blurred"
    [mail] = await mail_to(services, world.emails["visitor2"], "id_check")
    assert "Photo is blurred" in mail.body
    resp = await admin.post(path, json={"decision": "verified"})
    assert (await resp.json())["id_status"] == "verified"
    mails = await mail_to(services, world.emails["visitor2"], "id_check")
    assert len(mails) == 2
    assert "verified" in mails[1].body
    async with services.read() as s:
        account = await s.get(Account, visitor_id)
        assert account is not None
        assert account.id_checked_by == world.accounts["admin_a"]
        assert account.id_reject_reason is None
        audit = list(await s.execute(select(AuditEntry.action, AuditEntry.target)))
    assert ("id_photo.view", f"account:{visitor_id}") in audit
    assert [a for a, _ in audit].count("visitor.id_check") == 2
    # Officers may look but not decide; other facilities' staff do not see this visitor.
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.get(f"/api/visitors/{visitor_id}")).status == 200
    assert (await officer.post(path, json={"decision": "verified"})).status == 403
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.get(f"/api/visitors/{visitor_id}")).status == 404
    assert (await admin_b.get(f"/api/visitors/{visitor_id}/id-photo")).status == 404
    assert (await admin_b.post(path, json={"decision": "verified"})).status == 404
    # A visitor without a photo cannot be checked.
    resp = await admin.post(
        f"/api/visitors/{world.accounts['visitor']}/id-check", json={"decision": "verified"}
    )
    assert resp.status == 409
    assert (await admin.get(f"/api/visitors/{world.accounts['visitor']}/id-photo")).status == 404


async def test_a_ban_cancels_the_visitors_visits_at_that_facility_only(
    client: Client, world: World, services: Services
) -> None:
    here = await add_visit(services, world, person="pa1", kiosk="a1-1")
    other_visitor = await add_visit(services, world, person="pa1", visitor="visitor2", kiosk="a1-2")
    elsewhere = await add_visit(services, world, person="pb1", kiosk="b1-1")
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    path = f"/api/facilities/{world.facility_a}/bans"
    ends_at = (services.clock.now() + timedelta(days=90)).isoformat()
    ban = {
        "visitor_id": world.accounts["visitor"],
        "reason": "Contraband attempt",
        "ends_at": ends_at,
    }
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert (await officer.post(path, json=ban)).status == 403
    resp = await admin.post(path, json=ban)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["cancelled_visits"] == 1
    assert await visit_states(services, here, other_visitor, elsewhere) == [
        "cancelled",
        "scheduled",
        "scheduled",
    ]
    assert "Contraband attempt" in ((await visit_reason(services, here)) or "")
    assert len(await mail_to(services, world.emails["visitor"], "visit_cancelled")) == 1
    assert len(await mail_to(services, world.emails["visitor"], "visitor_ban")) == 1
    assert (await admin.post(path, json=ban)).status == 409
    listed = await (await officer.get(path)).json()
    assert [(b["visitor_id"], b["visitor_name"]) for b in listed] == [
        (world.accounts["visitor"], "Visitor")
    ]
    # A visitor with no tie to this facility cannot be looked up or banned from it.
    stranger = {**ban, "visitor_id": world.accounts["newcomer"]}
    assert (await admin.post(path, json=stranger)).status == 404
    past = {**ban, "visitor_id": world.accounts["visitor2"], "ends_at": "2001-01-01T00:00:00Z"}
    assert (await admin.post(path, json=past)).status == 422
    ban_id = body["ban"]["id"]
    admin_b = await ApiUser.sign_in(client, world.emails["admin_b"])
    assert (await admin_b.post(f"/api/bans/{ban_id}/lift", json={})).status == 404
    resp = await admin.post(f"/api/bans/{ban_id}/lift", json={"reason": "Appeal granted"})
    assert resp.status == 200
    assert (await resp.json())["lifted_at"] is not None
    assert (await admin.post(f"/api/bans/{ban_id}/lift", json={})).status == 409
    assert await (await officer.get(path)).json() == []
    assert len(await (await officer.get(path, params={"active_only": "false"})).json()) == 1
    assert len(await mail_to(services, world.emails["visitor"], "visitor_ban_lifted")) == 1
