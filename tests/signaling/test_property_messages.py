"""Property: whatever a client sends, the server answers with typed errors, never crashes,
and other visits' sockets are untouched."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    REPLY_TIMEOUT_S,
    VALID_OFFER,
    CallLog,
    Client,
    receive,
    still_answers,
    visit_with_link,
)
from vvserver.domain.services import Services
from vvserver.signaling.protocol import CLIENT_MESSAGE_TYPES

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "v",
        "token",
        "sdp",
        "visit_id",
        "candidate",
        "sdp_mid",
        "sdp_mline_index",
        "reason",
        "nonce",
        "note",
        "pin",
        "candidates_complete",
        "extra",
    ]
)
FIELD_VALUES = (
    JSON
    | st.just(VALID_OFFER)
    | st.just(1)
    | st.integers(min_value=-5, max_value=2**40)
    | st.just("candidate:1 1 udp 1 127.0.0.1 9 typ host")
    | st.just("")
    | st.just("1234")
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["typed", "typed", "typed", "json", "text"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON))
    body: dict[str, Any] = draw(st.dictionaries(FIELDS, FIELD_VALUES, max_size=6))
    body["type"] = draw(st.sampled_from(CLIENT_MESSAGE_TYPES) | st.text(max_size=8))
    if draw(st.booleans()):
        body["v"] = 1
    return json.dumps(body)


@dataclass(frozen=True)
class Scene:
    """Created once for all examples: the visit under test, a bystander visit, credentials."""

    visit_id: int
    token: str
    bystander_visit: int
    bystander_token: str
    officer_cookie: str


@pytest.fixture
async def scene(ws_client: Client, services: Services, world: World) -> Scene:
    visit_id, token = await visit_with_link(services, world)
    bystander_visit, bystander_token = await visit_with_link(
        services, world, visitor="visitor2", kiosk="a2-1", person="pa2"
    )
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    return Scene(visit_id, token, bystander_visit, bystander_token, officer.cookies["vv_session"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(
    channel=st.sampled_from(["visitor", "kiosk", "officer"]), sent=st.lists(messages(), max_size=8)
)
async def test_random_messages_get_typed_answers_and_leave_other_visits_alone(
    ws_client: Client,
    scene: Scene,
    world: World,
    media: CallLog,
    caplog: pytest.LogCaptureFixture,
    channel: str,
    sent: list[str],
) -> None:
    caplog.set_level(logging.ERROR, logger="vvserver")
    if channel == "visitor":
        url, headers = f"/ws/visitor?token={scene.token}", {}
    elif channel == "kiosk":
        url, headers = "/ws/kiosk", {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    else:
        url, headers = "/ws/officer", {"Cookie": f"vv_session={scene.officer_cookie}"}
    async with (
        ws_client.ws_connect(f"/ws/visitor?token={scene.bystander_token}") as bystander,
        ws_client.ws_connect(url, headers=headers) as ws,
    ):
        await receive(bystander)
        await receive(bystander)
        assert (await receive(ws))["type"] == "welcome"
        for text in sent:
            await ws.send_str(text)
        await ws.send_json({"type": "ping", "v": 1, "nonce": "end"})
        replies = []
        while True:
            msg = await ws.receive(timeout=REPLY_TIMEOUT_S)
            assert msg.type == WSMsgType.TEXT, (msg.type, sent)
            reply = msg.json()
            replies.append(reply)
            if reply["type"] == "pong" and reply["nonce"] == "end":
                break
        errors = [r for r in replies if r["type"] == "error"]
        assert all(e["code"] != "internal_error" and e["message"] for e in errors), errors
        await still_answers(bystander)
    assert all(joined != scene.bystander_visit for joined, _, _ in media.joins)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    media.joins.clear()
