"""The socket edge: Origin, size limit, malformed messages, rate limit, shutdown."""

from __future__ import annotations

import pytest
from aiohttp import WSCloseCode, WSMsgType, WSServerHandshakeError

from tests.conftest import AiohttpClient
from tests.factories import World
from tests.signaling.conftest import (
    Client,
    closed_with,
    receive,
    still_answers,
    visit_with_link,
)
from vvserver.app import create_app
from vvserver.app_keys import HUB
from vvserver.domain.services import Services
from vvserver.settings import Settings
from vvserver.signaling.connection import RATE_BURST


@pytest.mark.parametrize("path", ["/ws/visitor", "/ws/kiosk", "/ws/officer"])
async def test_a_page_from_another_site_is_refused_before_the_upgrade(
    ws_client: Client, path: str
) -> None:
    with pytest.raises(WSServerHandshakeError) as refused:
        await ws_client.ws_connect(path, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403


async def test_the_servers_own_origins_are_accepted(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    host = f"http://{ws_client.host}:{ws_client.port}"
    for origin in (host, "http://127.0.0.1:8080"):  # the request's host; settings.public_url
        async with ws_client.ws_connect(
            f"/ws/visitor?token={token}", headers={"Origin": origin}
        ) as ws:
            assert (await receive(ws))["type"] == "welcome"


async def test_a_plain_http_request_is_not_a_socket(ws_client: Client) -> None:
    resp = await ws_client.get("/ws/kiosk")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_request"


async def test_bad_messages_get_typed_errors_and_the_socket_goes_on(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive(ws)
        await receive(ws)
        cases: list[tuple[str, str]] = [
            ("{not json", "malformed_message"),
            ("[1, 2]", "malformed_message"),
            ('{"v": 1}', "malformed_message"),
            ('{"type": "dance", "v": 1}', "unknown_type"),
            ('{"type": "ping", "v": 7}', "unsupported_version"),
            ('{"type": "ping"}', "unsupported_version"),
            ('{"type": "offer", "v": 1}', "invalid_message"),
            ('{"type": "offer", "v": 1, "sdp": "x", "extra": true}', "invalid_message"),
            ('{"type": "offer", "v": 1, "sdp": 5}', "invalid_message"),
            ('{"type": "ice_candidate", "v": 1, "candidate": ""}', "no_pending_offer"),
            ('{"type": "monitor", "v": 1, "visit_id": 1, "sdp": "x"}', "not_allowed"),
            ('{"type": "offer", "v": 1, "sdp": "v=0"}', "offer_no_media"),
        ]
        for text, code in cases:
            await ws.send_str(text)
            reply = await receive(ws)
            assert (reply["type"], reply["code"]) == ("error", code), text
            assert reply["message"]
        await ws.send_bytes(b"\x00\x01")
        assert (await receive(ws))["code"] == "binary_not_supported"
        await still_answers(ws)


async def test_a_message_over_64_kib_closes_only_that_socket(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    _, other_token = await visit_with_link(services, world, visitor="visitor2", kiosk="a1-2")
    async with (
        ws_client.ws_connect(f"/ws/visitor?token={token}") as ws,
        ws_client.ws_connect(f"/ws/visitor?token={other_token}") as other,
    ):
        for sock in (ws, other):
            await receive(sock)
            await receive(sock)
        await ws.send_str('{"type": "ping", "v": 1, "nonce": "' + "x" * 70_000 + '"}')
        code, _ = await closed_with(ws)
        assert code == WSCloseCode.MESSAGE_TOO_BIG
        await still_answers(other)


async def test_a_flooding_socket_is_slowed_down(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive(ws)
        await receive(ws)
        sent = int(RATE_BURST) + 20
        for n in range(sent):
            await ws.send_json({"type": "ping", "v": 1, "nonce": str(n)})
        replies = [await receive(ws) for _ in range(sent)]
        limited = [r for r in replies if r["type"] == "error"]
        assert limited
        assert all(r["code"] == "rate_limited" for r in limited)
        pongs = [r["nonce"] for r in replies if r["type"] == "pong"]
        assert pongs[: int(RATE_BURST)] == [str(n) for n in range(int(RATE_BURST))]


async def test_open_sockets_are_closed_going_away_at_shutdown(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    ws = await ws_client.ws_connect(f"/ws/visitor?token={token}")
    await receive(ws)
    await ws_client.server.runner.shutdown()  # type: ignore[union-attr]
    msg = await ws.receive(timeout=5)
    while msg.type == WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert ws.close_code == WSCloseCode.GOING_AWAY


async def test_without_a_media_service_offers_are_refused_cleanly(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services, world: World
) -> None:
    app = create_app(settings, services=services, workers=[])
    app[HUB].media = None
    client = await aiohttp_client(app)
    _, token = await visit_with_link(services, world)
    async with client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive(ws)
        await receive(ws)
        for message in ({"type": "offer", "v": 1, "sdp": "v=0"}, {"type": "leave", "v": 1}):
            await ws.send_json(message)
            assert (await receive(ws))["code"] == "media_unavailable"
        await still_answers(ws)
