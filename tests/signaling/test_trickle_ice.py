"""Trickled ICE candidates are folded into the offer before the media relay (no trickle) sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.factories import World
from tests.signaling.conftest import CallLog, Client, receive, visit_with_link
from vvserver.domain.services import Services
from vvserver.signaling import participants
from vvserver.signaling.ice import client_ice_servers, is_mdns_candidate, merge_candidates

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"
)
HOST = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
MDNS = "candidate:2 1 udp 2130706431 3f1c0c2e-aaaa-bbbb.local 50001 typ host"
SRFLX = "candidate:3 1 udp 1694498815 203.0.113.7 50002 typ srflx raddr 0.0.0.0 rport 0"


def test_candidates_land_in_their_media_section() -> None:
    merged = merge_candidates(OFFER, [(f"a={HOST}", "1", None), (f"a={SRFLX}", None, 0)])
    lines = merged.split("\r\n")
    assert lines.index(f"a={SRFLX}") == lines.index("a=mid:0") + 1
    assert lines.index(f"a={HOST}") == lines.index("a=mid:1") + 1
    assert merged.endswith("\r\n")


def test_mdns_candidates_are_recognised() -> None:
    assert is_mdns_candidate(MDNS)
    assert is_mdns_candidate(f"a={MDNS}")
    assert not is_mdns_candidate(HOST)
    assert not is_mdns_candidate(SRFLX)


def test_ice_servers_come_from_settings_and_bad_entries_are_skipped(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        ice_servers=[
            {"urls": "stun:stun.example.org:3478"},
            {"urls": ["turn:turn.example.org"], "username": "u", "credential": "p"},
            {"urls": []},
            {"username": "no urls"},
        ],
    )
    servers = client_ice_servers(settings, "visit-1", datetime.now(UTC))
    assert [s.model_dump() for s in servers] == [
        {"urls": ["stun:stun.example.org:3478"], "username": None, "credential": None},
        {"urls": ["turn:turn.example.org"], "username": "u", "credential": "p"},
    ]


async def test_a_trickling_visitor_gets_one_answer_with_its_candidates(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, token = await visit_with_link(services, world)
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive(ws)
        await receive(ws)
        await ws.send_json({"type": "offer", "v": 1, "sdp": OFFER, "candidates_complete": False})
        for candidate, mid in ((HOST, "0"), (MDNS, "0"), (SRFLX, "1")):
            await ws.send_json(
                {"type": "ice_candidate", "v": 1, "candidate": candidate, "sdp_mid": mid}
            )
        await ws.send_json({"type": "ice_candidate", "v": 1, "candidate": "bogus"})
        assert (await receive(ws))["code"] == "invalid_candidate"
        await ws.send_json({"type": "ice_candidate", "v": 1, "candidate": ""})
        assert (await receive(ws))["type"] == "answer"
    [(joined_visit, role, sdp)] = media.joins
    assert (joined_visit, role) == (visit_id, "visitor")
    assert f"a={HOST}" in sdp
    assert f"a={SRFLX}" in sdp
    assert ".local" not in sdp


async def test_an_offer_whose_candidates_never_end_goes_after_a_wait(
    ws_client: Client,
    services: Services,
    world: World,
    media: CallLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(participants, "TRICKLE_WAIT_S", 0.2)
    _, token = await visit_with_link(services, world)
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as ws:
        await receive(ws)
        await receive(ws)
        await ws.send_json({"type": "offer", "v": 1, "sdp": OFFER, "candidates_complete": False})
        await ws.send_json({"type": "ice_candidate", "v": 1, "candidate": HOST, "sdp_mid": "0"})
        assert (await receive(ws))["type"] == "answer"
    assert f"a={HOST}" in media.joins[0][2]
