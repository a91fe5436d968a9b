"""Clients get short-lived TURN credentials (TURN REST API) that a coturn with the secret takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from tests.conftest import AiohttpClient, make_settings
from tests.factories import World
from tests.signaling.conftest import CallLog, receive, visit_with_link
from tests.signaling.test_officer_channel import staff_headers
from vvserver.app import create_app
from vvserver.app_keys import HUB
from vvserver.domain.services import Services
from vvserver.settings import Settings
from vvserver.signaling.ice import client_ice_servers, turn_rest_credentials

SECRET = "north-gate-turn-secret"
TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]


def test_credentials_match_a_vector_computed_with_openssl() -> None:
    # printf '%s' '1764118800:visit-42' | openssl dgst -sha1 -hmac north-gate-turn-secret \
    #   -binary | base64
    assert turn_rest_credentials(SECRET, "visit-42", 1764118800) == (
        "1764118800:visit-42",
        "ztlsiMfGskIYbQKAioYQIcmAlMs=",
    )


def test_the_turn_entry_expires_ttl_after_now(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        ice_servers=[{"urls": "stun:stun.example.org:3478"}],
        turn_urls=TURN_URLS,
        turn_secret=SECRET,
        turn_ttl_s=600,
    )
    now = datetime(2025, 11, 26, 0, 0, tzinfo=UTC)  # 1764115200
    stun, turn = client_ice_servers(settings, "kiosk-3", now)
    assert stun.urls == ["stun:stun.example.org:3478"]
    assert turn.urls == TURN_URLS
    assert turn.username == "1764115800:kiosk-3"
    expected = hmac.new(SECRET.encode(), b"1764115800:kiosk-3", hashlib.sha1).digest()
    assert turn.credential == base64.b64encode(expected).decode()
    # Another subject or another secret gives another credential.
    assert client_ice_servers(settings, "kiosk-4", now)[1].credential != turn.credential
    other = make_settings(tmp_path, turn_urls=TURN_URLS, turn_secret="another-secret")
    assert client_ice_servers(other, "kiosk-3", now)[0].credential != turn.credential


def test_no_turn_entry_without_both_urls_and_secret(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    assert client_ice_servers(make_settings(tmp_path, turn_urls=TURN_URLS), "x", now) == []
    assert client_ice_servers(make_settings(tmp_path, turn_secret=SECRET), "x", now) == []


async def test_a_visitor_and_an_officer_get_their_own_turn_credentials(
    aiohttp_client: AiohttpClient, services: Services, world: World, tmp_path: Path
) -> None:
    base: Settings = services.settings
    settings = base.model_copy(
        update={"turn_urls": TURN_URLS, "turn_secret": SECRET, "turn_ttl_s": 3600}
    )
    services.settings = settings
    app: web.Application = create_app(settings, services=services, workers=[])
    app[HUB].media = CallLog()
    client = await aiohttp_client(app)
    visit_id, token = await visit_with_link(services, world)
    before = services.clock.now()
    async with client.ws_connect(f"/ws/visitor?token={token}") as visitor:
        welcome = await receive(visitor)
    turn = welcome["ice_servers"][-1]
    assert turn["urls"] == TURN_URLS
    expiry, subject = turn["username"].split(":")
    assert subject == f"visit-{visit_id}"
    expires = datetime.fromtimestamp(int(expiry), UTC)
    assert before + timedelta(seconds=3599) <= expires <= before + timedelta(seconds=3660)
    digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()

    headers = await staff_headers(client, world, "officer_a")
    async with client.ws_connect("/ws/officer", headers=headers) as officer:
        welcome = await receive(officer)
    officer_id = world.accounts["officer_a"]
    assert welcome["ice_servers"][-1]["username"].endswith(f":staff-{officer_id}")
