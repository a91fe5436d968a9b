"""Input at the edges of the protocol: deeply nested JSON, foreign WebSocket origins, loose
protocol versions, weak DTLS fingerprints, invisible characters in names, digits that are not
ASCII, and broken HTTP requests. Each gets a clear refusal and nothing else happens."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError

from tests.factories import ApiUser, World, add_visit
from tests.media.test_offers import real_offer
from tests.security.conftest import Client, Served
from vvserver.domain.services import Services
from vvserver.media.offers import OfferRejected, check_offer
from vvserver.media.participant import FORWARDED_CODECS


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------------------- nesting


async def test_deeply_nested_json_is_refused_before_sign_in(client: Client) -> None:
    for depth in (40, 1000, 100_000):
        body = f'{{"email": "a@example.org", "password": {nested(depth)}}}'
        response = await client.post(
            "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, depth
        assert (await response.json())["error"]["code"] == "json_too_deep"


async def test_deeply_nested_json_is_refused_on_a_profile_change(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    response = await visitor.patch(
        "/api/me",
        data=f'{{"name": {nested(1000)}}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "json_too_deep"
    # Ordinary bodies still go through.
    assert (await visitor.patch("/api/me", json={"name": "Maria Lopez"})).status == 200


# ---------------------------------------------------------------------------- WebSocket origin


async def opens(client: Client, origin: str) -> bool:
    try:
        async with client.ws_connect("/ws/kiosk", headers={"Origin": origin}):
            return True
    except WSServerHandshakeError as refused:
        status = refused.status
    assert status == 403
    return False


async def test_a_socket_origin_must_match_scheme_host_and_port(client: Client) -> None:
    own = f"{client.host}:{client.port}"
    assert await opens(client, f"http://{own}")
    assert await opens(client, "http://127.0.0.1:8080")  # settings.public_url
    assert await opens(client, "http://127.0.0.1:8080/")
    assert not await opens(client, f"https://{own}")  # the server is on http
    assert not await opens(client, "https://127.0.0.1:8080")
    assert client.port is not None
    assert not await opens(client, f"http://{client.host}:{client.port + 1}")
    assert not await opens(client, f"ws://{own}")
    assert not await opens(client, "null")
    assert not await opens(client, f"http://user@{own}")


async def test_behind_tls_a_page_of_the_own_host_comes_over_https(tls_client: Client) -> None:
    own = f"{tls_client.host}:{tls_client.port}"
    assert await opens(tls_client, f"https://{own}")
    assert not await opens(tls_client, f"http://{own}")


# ---------------------------------------------------------------------------- protocol version


async def reply_to(client: Client, token: str, text: str) -> dict[str, Any]:
    async with client.ws_connect("/ws/kiosk", headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send_str(text)
        for _ in range(20):
            msg = await ws.receive(timeout=5)
            assert msg.type == WSMsgType.TEXT, msg
            data: dict[str, Any] = msg.json()
            if data["type"] in ("pong", "error"):
                return data
    raise AssertionError("no reply")


async def test_the_protocol_version_is_the_integer_1_and_nothing_that_equals_it(
    client: Client, world: World
) -> None:
    token = world.kiosk_tokens["a1-1"]
    assert (await reply_to(client, token, '{"type": "ping", "v": 1}'))["type"] == "pong"
    for version in ("true", "1.0", '"1"'):
        reply = await reply_to(client, token, f'{{"type": "ping", "v": {version}}}')
        assert (reply["type"], reply["code"]) == ("error", "unsupported_version"), version
    reply = await reply_to(client, token, '{"type": "leave", "v": 1, "visit_id": "5"}')
    assert reply["code"] == "invalid_message"


# ---------------------------------------------------------------------------- DTLS fingerprints


def with_fingerprints(sdp: str, session: list[str], media: list[str]) -> str:
    """The offer with its fingerprints replaced: ``session`` ones at the top, ``media`` ones
    in every media section."""
    lines = [x for x in sdp.splitlines() if x and not x.startswith("a=fingerprint:")]
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("t="):
            out += [f"a=fingerprint:{f}" for f in session]
        if line.startswith("m="):
            out += [f"a=fingerprint:{f}" for f in media]
    return "\r\n".join(out) + "\r\n"


MD5 = "md5 " + ":".join(["AB"] * 16)
SHA1 = "sha-1 " + ":".join(["AB"] * 20)
SHA256 = "sha-256 " + ":".join(["AB"] * 32)


async def test_offers_with_only_md5_or_sha1_fingerprints_are_refused() -> None:
    sdp = await real_offer("audio", "video")
    for session, media in (([], [MD5]), ([SHA1], []), ([], [MD5, SHA1]), ([SHA256], [SHA1])):
        with pytest.raises(OfferRejected) as refused:
            check_offer(with_fingerprints(sdp, session, media), required_codecs=FORWARDED_CODECS)
        assert refused.value.code == "offer_weak_fingerprint", (session, media)
    for session, media in (([SHA256], []), ([], [SHA1, SHA256]), ([MD5], [SHA256])):
        check_offer(with_fingerprints(sdp, session, media), required_codecs=FORWARDED_CODECS)


# ---------------------------------------------------------------------------- names

INVISIBLE = {
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "first strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "byte order mark": "\ufeff",
    "noncharacter U+FDD0": "\ufdd0",
    "noncharacter U+FFFE": "\ufffe",
    "noncharacter U+1FFFF": "\U0001ffff",
}


def refused_field(body: dict[str, Any]) -> list[Any]:
    return [entry["loc"] for entry in body["error"]["details"]]


async def test_names_with_bidi_overrides_zero_width_or_noncharacters_are_refused(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    agency = await ApiUser.sign_in(client, world.emails["agency_admin"])
    for what, ch in INVISIBLE.items():
        name = f"Maria{ch}Lopez"
        attempts = [
            (
                None,
                "POST",
                "/api/auth/signup",
                {
                    "email": "new@example.org",
                    "password": "a long enough password",
                    "name": name,
                    "date_of_birth": "1990-01-01",
                    "phone": "+1 555 0100",
                },
            ),
            (visitor, "PATCH", "/api/me", {"name": name}),
            (
                visitor,
                "POST",
                "/api/visits",
                {
                    "person_id": world.persons["pa1"],
                    "start": "2030-01-07T10:00:00-05:00",
                    "minors": [{"name": name, "date_of_birth": "2020-01-01"}],
                },
            ),
            (
                admin,
                "POST",
                f"/api/facilities/{world.facility_a}/persons",
                {
                    "unit_id": world.unit_a1,
                    "booking_number": "B-77",
                    "first_name": "Ana",
                    "last_name": name,
                },
            ),
            (admin, "POST", f"/api/facilities/{world.facility_a}/units", {"name": name}),
            (admin, "PATCH", f"/api/kiosks/{world.kiosks['a1-1']}", {"name": name}),
            (
                admin,
                "POST",
                "/api/staff",
                {
                    "email": "officer9@example.org",
                    "name": name,
                    "role": "officer",
                    "facility_id": world.facility_a,
                    "password": "a long enough password",
                },
            ),
            (admin, "PATCH", f"/api/facilities/{world.facility_a}", {"name": name}),
            (agency, "POST", "/api/facilities", {"name": name, "timezone": "America/Chicago"}),
        ]
        for user, method, path, body in attempts:
            if user is None:
                response = await client.request(method, path, json=body)
            else:
                response = await user.request(method, path, json=body)
            assert response.status == 422, (what, path, await response.text())
            assert "name" in str(refused_field(await response.json())), (what, path)


async def test_names_in_any_script_are_still_welcome(client: Client, world: World) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    for name in ("José Ñúñez-O'Brien", "محمد عبد الله", "李小龙", "Αλέξανδρος", "Nguyễn Văn An"):
        response = await visitor.patch("/api/me", json={"name": name})
        assert response.status == 200, (name, await response.text())
        assert (await response.json())["name"] == name


# ---------------------------------------------------------------------------- ids in paths


async def test_ids_in_paths_are_ascii_digits_only(
    client: Client, world: World, services: Services
) -> None:
    visit_id = await add_visit(services, world)
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    assert (await visitor.get(f"/api/visits/{visit_id}")).status == 200
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in str(visit_id))
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in str(visit_id))
    for written in (arabic_indic, fullwidth, "\u00b2", "\u00b9", f"{visit_id}\u0660"):
        response = await visitor.get(f"/api/visits/{written}")
        assert response.status == 404, (written, await response.text())
        assert (await response.json())["error"]["code"] == "not_found"


# ---------------------------------------------------------------------------- broken HTTP


async def test_an_over_long_header_line_is_one_log_line_not_a_traceback(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    reply = await served.exchange(
        b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n"
    )
    assert b" 400 " in reply.split(b"\r\n", 1)[0]
    [record] = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "400" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert len(record.getMessage()) < 400
