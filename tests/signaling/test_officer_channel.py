"""An officer's live view: the visits of the facility, updated as kiosks and visitors come."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp import WSCloseCode

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    closed_with,
    receive,
    receive_until,
    start_event,
    still_answers,
    visit_with_link,
)
from vvserver.db.models import Session
from vvserver.domain.accounts.secrets import token_hash
from vvserver.domain.services import Services
from vvserver.signaling import officer_channel


async def staff_headers(client: Client, world: World, who: str) -> dict[str, str]:
    user = await ApiUser.sign_in(client, world.emails[who])
    return {"Cookie": f"vv_session={user.cookies['vv_session']}"}


async def test_officer_sees_the_facilitys_visits_and_the_kiosk_coming_online(
    ws_client: Client, services: Services, world: World
) -> None:
    here, token = await visit_with_link(services, world, starts_in=timedelta(minutes=10))
    annex, _ = await visit_with_link(services, world, kiosk="b1-1", person="pb1")
    headers = await staff_headers(ws_client, world, "officer_a")
    async with ws_client.ws_connect("/ws/officer", headers=headers) as officer:
        assert (await receive(officer))["role"] == "officer"
        snapshot = await receive(officer)
        assert snapshot["type"] == "live_snapshot"
        assert [v["id"] for v in snapshot["visits"]] == [here]  # not the annex's visit
        row = snapshot["visits"][0]
        assert row["kiosk_online"] is False
        assert row["visitor_connected"] is False
        assert row["person_name"] == "PA1 Doe"
        assert row["unit_name"] == "A1"

        kiosk_headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
        async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_headers) as kiosk:
            update = await receive_until(officer, "live_update")
            assert [(v["id"], v["kiosk_online"]) for v in update["changed"]] == [(here, True)]
            assert update["removed"] == []

            async with ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
                await receive(visitor)
                await receive(visitor)
                await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
                await receive(visitor)
                update = await receive_until(officer, "live_update")
                assert update["changed"][0]["visitor_connected"] is True
            await still_answers(kiosk)
        update = await receive_until(officer, "live_update")
        assert update["changed"][0]["kiosk_online"] is False
    # The agency admin sees both facilities' visits.
    headers = await staff_headers(ws_client, world, "agency_admin")
    async with ws_client.ws_connect("/ws/officer", headers=headers) as admin:
        await receive(admin)
        assert sorted(v["id"] for v in (await receive(admin))["visits"]) == sorted([here, annex])


async def test_officer_requests_go_to_the_media_service_in_scope(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    here, _ = await visit_with_link(services, world)
    annex, _ = await visit_with_link(services, world, kiosk="b1-1", person="pb1")
    media.facilities = {here: world.facility_a, annex: world.facility_b}
    headers = await staff_headers(ws_client, world, "officer_a")
    actor = f"officer:{world.accounts['officer_a']}"
    async with ws_client.ws_connect("/ws/officer", headers=headers) as officer:
        await receive(officer)
        await receive(officer)
        await officer.send_json({"type": "monitor", "v": 1, "visit_id": here, "sdp": "offer"})
        assert (await receive_until(officer, "answer"))["sdp"] == f"monitor answer for visit {here}"
        await officer.send_json({"type": "stop_monitor", "v": 1, "visit_id": here})
        assert (await receive_until(officer, "ok"))["ref"] == "stop_monitor"
        await officer.send_json(
            {"type": "terminate", "v": 1, "visit_id": here, "reason": "threats"}
        )
        assert (await receive_until(officer, "ok"))["ref"] == "terminate"
        await officer.send_json({"type": "monitor", "v": 1, "visit_id": annex, "sdp": "offer"})
        assert (await receive_until(officer, "error"))["code"] == "not_found"
        await officer.send_json({"type": "terminate", "v": 1, "visit_id": here, "reason": ""})
        assert (await receive_until(officer, "error"))["code"] == "invalid_message"
        await officer.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        assert (await receive_until(officer, "error"))["code"] == "not_allowed"
    assert media.monitors == [(here, actor, "offer")]
    assert media.stops == [(here, actor)]
    assert media.terminations == [(here, actor, "threats")]


async def test_only_signed_in_staff_open_the_live_channel(
    ws_client: Client, services: Services, world: World
) -> None:
    async with ws_client.ws_connect("/ws/officer") as ws:
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "unauthenticated"
    headers = await staff_headers(ws_client, world, "visitor")
    async with ws_client.ws_connect("/ws/officer", headers=headers) as ws:
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "wrong_role"
    kiosk_headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with ws_client.ws_connect("/ws/officer", headers=kiosk_headers) as ws:
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "unauthenticated"


async def test_an_open_live_view_keeps_the_session_and_ends_with_it(
    ws_client: Client, services: Services, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(officer_channel, "SESSION_CHECK_S", 0.0)
    monkeypatch.setattr(officer_channel, "REFRESH_S", 0.05)
    officer_user = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    cookie = officer_user.cookies["vv_session"]
    key = token_hash(cookie)
    idle_since = services.clock.now() - timedelta(minutes=25)
    async with services.write() as s:
        row = await s.get(Session, key)
        assert row is not None
        row.last_seen_at = idle_since
    services.sessions.forget(key)
    headers = {"Cookie": f"vv_session={cookie}"}
    async with ws_client.ws_connect("/ws/officer", headers=headers) as officer:
        await receive(officer)
        await receive(officer)
        for _ in range(100):  # the live view touches the session: it is no longer idle
            async with services.read() as s:
                row = await s.get(Session, key)
                assert row is not None
                if row.last_seen_at > idle_since + timedelta(minutes=20):
                    break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the session was never touched")
        # Signing out (e.g. in another tab) ends the live channel too, at once.
        resp = await officer_user.post("/api/auth/logout")
        assert resp.status in (200, 204)
        code, seen = await closed_with(officer)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[-1]["code"] == "credentials_revoked"


async def test_officers_in_scope_are_alerted_when_a_visit_starts_with_its_kiosk_offline(
    ws_client: Client, services: Services, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server up for longer than the kiosks' grace after its start.
    monkeypatch.setattr(services.settings, "kiosk_offline_grace_s", 0.0)
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    async with (
        ws_client.ws_connect(
            "/ws/officer", headers=await staff_headers(ws_client, world, "officer_a")
        ) as here,
        ws_client.ws_connect(
            "/ws/officer", headers=await staff_headers(ws_client, world, "officer_b")
        ) as annex,
        ws_client.ws_connect(
            "/ws/officer", headers=await staff_headers(ws_client, world, "agency_admin")
        ) as agency,
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
    ):
        for sock in (here, annex, agency):
            await receive_until(sock, "live_snapshot")
        await receive_until(visitor, "visit_status")
        services.events.publish(await start_event(services, visit_id))
        for sock in (here, agency):
            alert = await receive_until(sock, "alert")
            assert (alert["code"], alert["visit_id"]) == ("kiosk_offline", visit_id)
            assert alert["kiosk_id"] == world.kiosks["a1-1"]
        status = await receive_until(visitor, "visit_status")
        assert status["kiosk_online"] is False
        # The annex's officer got no alert: the next thing it hears is its own pong.
        await annex.send_json({"type": "ping", "v": 1, "nonce": "annex"})
        while (msg := await receive(annex))["type"] != "pong":
            assert msg["type"] != "alert"


async def test_a_cancelled_visit_leaves_the_live_list_at_once(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=20))
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])
    headers = await staff_headers(ws_client, world, "officer_a")
    async with ws_client.ws_connect("/ws/officer", headers=headers) as officer:
        snapshot = await receive_until(officer, "live_snapshot")
        assert [v["id"] for v in snapshot["visits"]] == [visit_id]
        resp = await admin.post(f"/api/visits/{visit_id}/cancel", json={"reason": "lockdown"})
        assert resp.status == 200
        update = await receive_until(officer, "live_update")
        assert update == {
            "v": 1,
            "type": "live_update",
            "server_time": update["server_time"],
            "changed": [],
            "removed": [visit_id],
        }
