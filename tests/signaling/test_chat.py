"""In-call chat: the visitor and the kiosk write to each other during a live visit, officers
in scope read along (never a privileged visit's), and the messages stay with the visit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import ClientWebSocketResponse
from sqlalchemy import func, select

from tests.factories import ApiUser, World
from tests.signaling.conftest import Client, receive, receive_until, visit_with_link
from vvserver.db.models import AuditEntry, Visit, VisitMessage
from vvserver.domain.services import Services
from vvserver.signaling.hub import SignalingHub


async def set_visit(services: Services, visit_id: int, **fields: Any) -> None:
    async with services.write() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        for name, value in fields.items():
            setattr(visit, name, value)


async def chat(ws: ClientWebSocketResponse, text: str, **extra: Any) -> None:
    await ws.send_json({"type": "chat", "v": 1, "text": text, **extra})


async def staff_headers(client: Client, world: World, who: str) -> dict[str, str]:
    user = await ApiUser.sign_in(client, world.emails[who])
    return {"Cookie": f"vv_session={user.cookies['vv_session']}"}


async def stored_count(services: Services, visit_id: int) -> int:
    async with services.read() as s:
        count = await s.scalar(
            select(func.count()).select_from(VisitMessage).where(VisitMessage.visit_id == visit_id)
        )
        return int(count or 0)


async def test_both_sides_and_the_officer_see_the_chat_of_a_live_visit(
    client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-5))
    await set_visit(services, visit_id, state="live")
    attorney, attorney_token = await visit_with_link(
        services,
        world,
        starts_in=timedelta(minutes=-5),
        kiosk="a1-2",
        person="pa2",
        visitor="visitor2",
    )
    await set_visit(services, attorney, state="live", privileged=True)
    officer_headers = await staff_headers(client, world, "officer_a")
    annex_headers = await staff_headers(client, world, "officer_b")
    kiosk_headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with (
        client.ws_connect("/ws/officer", headers=officer_headers) as officer,
        client.ws_connect("/ws/officer", headers=annex_headers) as annex,
        client.ws_connect("/ws/kiosk", headers=kiosk_headers) as kiosk,
        client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        client.ws_connect(f"/ws/visitor?token={attorney_token}") as lawyer,
    ):
        for ws in (officer, annex, kiosk, visitor, lawyer):
            assert (await receive(ws))["type"] == "welcome"

        await chat(lawyer, "privileged words")
        echoed = await receive_until(lawyer, "chat")
        assert (echoed["visit_id"], echoed["from"]) == (attorney, "visitor")

        await chat(visitor, "  Hello, can you read me?  ")
        for ws in (visitor, kiosk, officer):
            message = await receive_until(ws, "chat")
            assert message["visit_id"] == visit_id
            assert message["from"] == "visitor"
            assert message["text"] == "Hello, can you read me?"
            assert message["at"]
        await chat(kiosk, "Yes, loud and clear")
        for ws in (visitor, kiosk, officer):
            message = await receive_until(ws, "chat")
            assert (message["from"], message["text"]) == ("kiosk", "Yes, loud and clear")

        # The other facility's officer got none of it; a ping proves the socket is current.
        await annex.send_json({"type": "ping", "v": 1, "nonce": "n"})
        seen = []
        while (message := await receive(annex))["type"] != "pong":
            seen.append(message["type"])
        assert "chat" not in seen

    reader = await ApiUser.sign_in(client, world.emails["visitor"])
    resp = await reader.get(f"/api/visits/{visit_id}/messages")
    assert resp.status == 200, await resp.text()
    lines = await resp.json()
    assert [(m["from"], m["text"]) for m in lines] == [
        ("visitor", "Hello, can you read me?"),
        ("kiosk", "Yes, loud and clear"),
    ]
    assert lines[0]["id"] < lines[1]["id"]
    staff = await ApiUser.sign_in(client, world.emails["officer_a"])
    assert len(await (await staff.get(f"/api/visits/{visit_id}/messages")).json()) == 2
    refused = await staff.get(f"/api/visits/{attorney}/messages")
    assert (refused.status, (await refused.json())["error"]["code"]) == (403, "privileged_visit")
    kiosk_reader = await client.get(
        f"/api/visits/{visit_id}/messages",
        headers={"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"},
    )
    assert len(await kiosk_reader.json()) == 2
    other = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert (await other.get(f"/api/visits/{visit_id}/messages")).status == 404
    lawyer_reader = await other.get(f"/api/visits/{attorney}/messages")
    assert [m["text"] for m in await lawyer_reader.json()] == ["privileged words"]
    async with services.read() as s:
        reads = list(
            await s.execute(
                select(AuditEntry.target, AuditEntry.outcome).where(
                    AuditEntry.action == "chat.read"
                )
            )
        )
    assert [tuple(r) for r in reads] == [
        (f"visit:{visit_id}", "success"),
        (f"visit:{attorney}", "failure"),
    ]


async def test_chat_refusals_keep_the_socket_usable(
    client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=5))
    kiosk_headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with (
        client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        client.ws_connect("/ws/kiosk", headers=kiosk_headers) as kiosk,
    ):
        await receive(visitor)
        await receive(kiosk)
        await chat(visitor, "anyone there?")
        error = await receive_until(visitor, "error")
        assert (error["code"], error["ref"]) == ("visit_not_live", "chat")
        await chat(kiosk, "hello")
        assert (await receive_until(kiosk, "error"))["code"] == "visit_not_live"

        await set_visit(services, visit_id, state="live")
        for bad in ("", "x" * 1001):
            await chat(visitor, bad)
            assert (await receive_until(visitor, "error"))["code"] == "invalid_message"
        await chat(visitor, "   ")
        assert (await receive_until(visitor, "error"))["code"] == "invalid_text"
        await chat(visitor, "hi", visit_id=visit_id + 1000)
        assert (await receive_until(visitor, "error"))["code"] == "not_found"
        await chat(visitor, "y" * 1000)
        assert len((await receive_until(visitor, "chat"))["text"]) == 1000

        # The socket's message rate limit holds for chat as for everything else.
        flood = 120
        for n in range(flood):
            await chat(visitor, f"flood {n}")
        codes = []
        for _ in range(2 * flood):
            message = await receive(visitor)
            if message["type"] == "error":
                codes.append(message["code"])
                break
        assert codes == ["rate_limited"]
    # Refused messages were not stored: fewer than sent (one long message, then the flood).
    assert await stored_count(services, visit_id) < 1 + flood


async def test_chat_feeds_wake_for_chat_only_not_for_every_room_event(services: Services) -> None:
    """Quality reports every 5 s per side must not make every socket's chat feed query the store."""
    hub = SignalingHub(services)
    chat_feed = hub.watch_chat()
    live_board = hub.watch()
    hub.changed()  # a room event, a kiosk coming online, a visit starting
    assert live_board.is_set()
    assert not chat_feed.is_set()
    hub.chat_posted()
    assert chat_feed.is_set()
    hub.unwatch_chat(chat_feed)
    chat_feed.clear()
    hub.chat_posted()
    assert not chat_feed.is_set()
