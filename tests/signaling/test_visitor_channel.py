"""A visitor opens the visit's socket with the join link, waits, and joins the call."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import WSCloseCode

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    closed_with,
    receive,
    receive_until,
    still_answers,
    visit_with_link,
)
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import reissue_join_link


async def test_visitor_with_a_join_link_sees_the_waiting_room_and_joins(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=5))
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        welcome = await receive(ws)
        assert welcome["type"] == "welcome"
        assert welcome["role"] == "visitor"
        assert welcome["v"] == 1
        assert welcome["ice_servers"] == []
        status = await receive(ws)
        assert status["type"] == "visit_status"
        assert status["visit_id"] == visit_id
        assert status["state"] == "scheduled"
        assert status["kiosk_online"] is False
        assert 4 * 60 <= status["seconds_to_start"] <= 5 * 60
        assert status["seconds_left"] == 30 * 60

        await ws.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        answer = await receive(ws)
        assert answer == {
            "v": 1,
            "type": "answer",
            "visit_id": visit_id,
            "sdp": f"answer for visitor of visit {visit_id}",
        }
        assert media.joins == [(visit_id, "visitor", VALID_OFFER)]

        await ws.send_json({"type": "leave", "v": 1})
        assert await receive(ws) == {"v": 1, "type": "ok", "ref": "leave", "visit_id": visit_id}
        assert media.leaves == [(visit_id, "visitor")]


async def test_the_token_can_come_in_a_first_auth_message(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world)
    async with ws_client.ws_connect("/ws/visitor") as ws:
        await ws.send_json({"type": "auth", "v": 1, "token": token})
        assert (await receive(ws))["type"] == "welcome"
        assert (await receive(ws))["visit_id"] == visit_id
        await ws.send_json({"type": "auth", "v": 1, "token": token})
        error = await receive(ws)
        assert error["code"] == "already_authenticated"
        assert error["ref"] == "auth"
        await still_answers(ws)


async def test_a_signed_in_visitor_names_the_visit_instead(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, _ = await visit_with_link(services, world)
    other_id, _ = await visit_with_link(
        services, world, visitor="visitor2", kiosk="a1-2", starts_in=timedelta(minutes=35)
    )
    visitor = await ApiUser.sign_in(ws_client, world.emails["visitor"])
    headers = {"Cookie": f"vv_session={visitor.cookies['vv_session']}"}
    async with ws_client.ws_connect(f"/ws/visitor?visit_id={visit_id}", headers=headers) as ws:
        assert (await receive(ws))["type"] == "welcome"
        assert (await receive(ws))["visit_id"] == visit_id
        # Another visitor's visit is not found, and the socket goes on.
        await ws.send_json({"type": "offer", "v": 1, "visit_id": other_id, "sdp": VALID_OFFER})
        error = await receive(ws)
        assert (error["type"], error["code"], error["ref"]) == ("error", "not_found", "offer")
        await still_answers(ws)
    async with ws_client.ws_connect(f"/ws/visitor?visit_id={other_id}", headers=headers) as ws:
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "not_found"


async def test_bad_expired_and_replaced_links_are_refused_with_1008(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world)
    _over_id, over_token = await visit_with_link(
        services, world, kiosk="a1-2", starts_in=timedelta(minutes=-40)
    )
    await reissue_join_link(services, world.accounts["visitor"], visit_id)
    for bad, code in (
        (token, "join_link_revoked"),
        (over_token, "join_link_expired"),
        ("not-a-token", "join_link_invalid"),
    ):
        async with ws_client.ws_connect(f"/ws/visitor?token={bad}") as ws:
            close_code, seen = await closed_with(ws)
        assert close_code == WSCloseCode.POLICY_VIOLATION
        assert [m["type"] for m in seen] == ["error"]
        assert seen[0]["code"] == code, (bad, seen)


async def test_staff_and_anonymous_sockets_are_not_visitors(
    ws_client: Client, world: World
) -> None:
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    headers = {"Cookie": f"vv_session={officer.cookies['vv_session']}"}
    async with ws_client.ws_connect("/ws/visitor?visit_id=1", headers=headers) as ws:
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "wrong_role"
    async with ws_client.ws_connect("/ws/visitor") as ws:
        await ws.send_json({"type": "ping", "v": 1})
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "auth_required"


async def test_the_waiting_visitor_learns_at_once_that_the_visit_was_cancelled(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=10))
    admin = await ApiUser.sign_in(ws_client, world.emails["admin_a"])
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive_until(ws, "visit_status")
        resp = await admin.post(
            f"/api/visits/{visit_id}/cancel", json={"reason": "lockdown in unit A1"}
        )
        assert resp.status == 200, await resp.text()
        status = await receive_until(ws, "visit_status")
        assert status["state"] == "cancelled"
        assert status["end_reason"] == "lockdown in unit A1"
