"""Access ends with its revocation: signed-out, deactivated or re-passworded accounts and
disabled or rotated kiosks lose their open sockets at once (1008), and nothing they send after
the revocation acts (ASVS 7.4.1, 7.4.2, 7.4.3)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse, WSCloseCode
from sqlalchemy import delete, select, update

from tests.factories import ApiUser, World, add_visit
from tests.signaling.conftest import (
    REPLY_TIMEOUT_S,
    CallLog,
    Client,
    closed_with,
    receive,
    still_answers,
)
from tests.store_helpers import mail_to
from vvserver.db.models import AuditEntry, Kiosk, Session
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.services import Services
from vvserver.domain.visits.bus import CredentialsRevokedEvent

TERMINATE = {"type": "terminate", "v": 1, "reason": "threats against staff"}


async def closes(ws: ClientWebSocketResponse) -> tuple[int | None, list[dict[str, Any]]]:
    """The close code and the messages before it; fails unless the socket closes in time."""
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            return await closed_with(ws)
    except TimeoutError:
        await ws.close()  # so the server's teardown need not wait for it
        raise AssertionError("the socket stayed open") from None


def cookie_of(user: ApiUser) -> dict[str, str]:
    return {"Cookie": f"vv_session={user.cookies['vv_session']}"}


async def live_view(client: Client, user: ApiUser) -> ClientWebSocketResponse:
    officer = await client.ws_connect("/ws/officer", headers=cookie_of(user))
    assert (await receive(officer))["type"] == "welcome"
    assert (await receive(officer))["type"] == "live_snapshot"
    return officer


async def a_live_visit(services: Services, world: World, media: CallLog) -> int:
    visit_id = await add_visit(services, world, ends_in=600, state="live")
    media.facilities[visit_id] = world.facility_a
    return visit_id


async def test_a_deactivated_officers_live_view_closes_at_once_and_cannot_end_a_visit(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id = await a_live_visit(services, world, media)
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    live = await live_view(ws_client, officer)
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])

    resp = await admin.post(f"/api/staff/{world.accounts['officer_a']}/deactivate")
    assert resp.status == 200, await resp.text()
    # Right after the deactivation the officer still tries to end the visit.
    await live.send_json({**TERMINATE, "visit_id": visit_id})
    code, seen = await closes(live)

    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[-1]["type"] == "error"
    assert seen[-1]["code"] in ("credentials_revoked", "session_expired")
    assert not any(m["type"] == "ok" for m in seen)
    assert media.terminations == []


async def test_signing_out_closes_that_sessions_sockets_and_no_other(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id = await a_live_visit(services, world, media)
    laptop = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    desk = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    on_laptop = await live_view(ws_client, laptop)
    on_desk = await live_view(ws_client, desk)

    assert (await laptop.post("/api/auth/logout")).status == 204
    code, seen = await closes(on_laptop)

    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")
    await still_answers(on_desk)
    await on_desk.send_json({**TERMINATE, "visit_id": visit_id})
    assert (await receive(on_desk)) == {
        "v": 1,
        "type": "ok",
        "ref": "terminate",
        "visit_id": visit_id,
    }
    assert media.terminations == [
        (visit_id, f"officer:{world.accounts['officer_a']}", TERMINATE["reason"])
    ]
    await on_desk.close()


async def test_changing_the_password_ends_the_other_sessions_and_their_visitor_sockets(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id = await add_visit(services, world, starts_in=timedelta(minutes=5))
    phone = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    home = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    on_phone = await ws_client.ws_connect(
        f"/ws/visitor?visit_id={visit_id}", headers=cookie_of(phone)
    )
    on_home = await ws_client.ws_connect(
        f"/ws/visitor?visit_id={visit_id}", headers=cookie_of(home)
    )
    for ws in (on_phone, on_home):
        assert (await receive(ws))["type"] == "welcome"
        assert (await receive(ws))["type"] == "visit_status"

    resp = await home.post(
        "/api/auth/password",
        json={"current_password": "correct horse battery", "new_password": "a fresh passphrase"},
    )
    assert resp.status == 204, await resp.text()

    code, seen = await closes(on_phone)
    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")
    assert (await phone.get("/api/auth/session")).status == 401
    assert (await home.get("/api/auth/session")).status == 200
    await still_answers(on_home)
    await on_home.close()


async def test_a_password_reset_closes_every_socket_of_the_account(
    ws_client: Client, services: Services, world: World
) -> None:
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    live = await live_view(ws_client, officer)
    resp = await ws_client.post(
        "/api/auth/password-reset", json={"email": world.emails["officer_a"]}
    )
    assert resp.status == 202
    [mail] = await mail_to(services, world.emails["officer_a"], "password_reset")
    token = mail.body.split("token=")[1].split()[0]

    resp = await ws_client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "a fresh passphrase"}
    )
    assert resp.status == 204, await resp.text()

    code, seen = await closes(live)
    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")


async def test_signing_out_everywhere_ends_every_session_and_socket_of_the_account(
    ws_client: Client, services: Services, world: World
) -> None:
    first = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    second = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    colleague = await ApiUser.sign_in(ws_client, world.emails["admin_a"])
    sockets = [await live_view(ws_client, user) for user in (first, second, colleague)]

    resp = await second.post("/api/auth/logout-everywhere")
    assert resp.status == 204
    assert "Max-Age=0" in resp.headers["Set-Cookie"]

    for ws in sockets[:2]:
        code, seen = await closes(ws)
        assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")
    assert (await first.get("/api/auth/session")).status == 401
    assert (await second.get("/api/auth/session")).status == 401
    assert (await colleague.get("/api/auth/session")).status == 200
    await still_answers(sockets[2])
    await sockets[2].close()
    async with services.read() as s:
        actions = list(await s.scalars(select(AuditEntry.action)))
    assert "auth.logout_everywhere" in actions


async def test_disabling_a_kiosk_closes_its_socket_and_it_shows_offline(
    ws_client: Client, services: Services, world: World
) -> None:
    kiosk_id = world.kiosks["a1-1"]
    headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk = await ws_client.ws_connect("/ws/kiosk", headers=headers)
    assert (await receive(kiosk))["type"] == "welcome"
    assert (await receive(kiosk))["type"] == "schedule"
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])

    resp = await admin.patch(f"/api/kiosks/{kiosk_id}", json={"enabled": False})
    assert resp.status == 200
    await kiosk.send_json({"type": "get_schedule", "v": 1})
    code, seen = await closes(kiosk)

    assert code == WSCloseCode.POLICY_VIOLATION
    assert [m["type"] for m in seen] == ["error"]
    listed = await (await admin.get(f"/api/facilities/{world.facility_a}/kiosks")).json()
    [row] = [k for k in listed if k["id"] == kiosk_id]
    assert (row["enabled"], row["online"]) == (False, False)
    assert not services.kiosks_online.is_online(kiosk_id)


async def test_rotating_a_kiosk_token_closes_the_old_tokens_socket(
    ws_client: Client, services: Services, world: World
) -> None:
    kiosk_id = world.kiosks["a1-1"]
    old = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk = await ws_client.ws_connect("/ws/kiosk", headers=old)
    await receive(kiosk)
    await receive(kiosk)
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])

    resp = await admin.post(f"/api/kiosks/{kiosk_id}/rotate")
    new_token = (await resp.json())["token"]

    code, seen = await closes(kiosk)
    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")
    async with ws_client.ws_connect("/ws/kiosk", headers=old) as again:
        code, seen = await closes(again)
        assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "invalid_device_token")
    new = {"Authorization": f"Bearer {new_token}"}
    async with ws_client.ws_connect("/ws/kiosk", headers=new) as replaced:
        assert (await receive(replaced))["type"] == "welcome"


async def test_a_request_sent_before_the_revocation_event_arrives_is_not_acted_on(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    """Another node ended the session (its event has not reached this node yet): the next
    request checks the session and finds it gone."""
    visit_id = await a_live_visit(services, world, media)
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    live = await live_view(ws_client, officer)
    key = token_hash(officer.cookies["vv_session"])
    async with services.write() as s:
        await s.execute(delete(Session).where(Session.token_hash == key))
    services.sessions.forget(key)  # as after the cache's few seconds

    await live.send_json({**TERMINATE, "visit_id": visit_id})
    code, seen = await closes(live)

    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "session_expired")
    assert media.terminations == []


async def test_a_kiosk_disabled_elsewhere_gets_no_schedule(
    ws_client: Client, services: Services, world: World
) -> None:
    headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk = await ws_client.ws_connect("/ws/kiosk", headers=headers)
    await receive(kiosk)
    await receive(kiosk)
    async with services.write() as s:
        await s.execute(update(Kiosk).where(Kiosk.id == world.kiosks["a1-1"]).values(enabled=False))

    await kiosk.send_json({"type": "get_schedule", "v": 1})
    code, seen = await closes(kiosk)

    assert (code, seen) == (
        WSCloseCode.POLICY_VIOLATION,
        [
            {
                "v": 1,
                "type": "error",
                "code": "invalid_device_token",
                "message": "this device token no longer works",
                "ref": None,
                "details": None,
            }
        ],
    )


async def test_a_revocation_from_another_node_closes_the_sockets_here(
    ws_client: Client, services: Services, world: World
) -> None:
    """In a cluster the event comes over the bus: the hub closes the sockets and the session
    cache forgets the session."""
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    live = await live_view(ws_client, officer)
    key = token_hash(officer.cookies["vv_session"])
    assert services.sessions.get(key) is not None

    services.events.publish(
        CredentialsRevokedEvent(account_id=world.accounts["officer_a"], reason="deactivated")
    )
    code, seen = await closes(live)

    assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "credentials_revoked")
    assert services.sessions.get(key) is None


async def test_the_revocation_is_published_after_the_commit_and_not_for_a_refusal(
    ws_client: Client, services: Services, world: World
) -> None:
    events = services.events.subscribe()
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])
    resp = await admin.post(f"/api/staff/{world.accounts['admin_a']}/deactivate")
    assert resp.status == 409  # one's own account: refused, nothing revoked
    resp = await admin.post(f"/api/staff/{world.accounts['officer_a']}/deactivate")
    assert resp.status == 200
    seen = []
    while not events.empty():
        seen.append(events.get_nowait())
    assert [e for e in seen if isinstance(e, CredentialsRevokedEvent)] == [
        CredentialsRevokedEvent(account_id=world.accounts["officer_a"], reason="deactivated")
    ]
    services.events.unsubscribe(events)
    await asyncio.sleep(0)
