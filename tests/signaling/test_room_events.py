"""The media room's events reach both sides of the visit, and the officers' live list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    receive,
    receive_until,
    visit_with_link,
)
from vvserver.domain.services import Services
from vvserver.media.room_events import (
    MediaFlowChanged,
    MediaNotConnected,
    ParticipantStateChanged,
    QualityReport,
    VisitEnded,
    VisitWarning,
)


async def test_warnings_states_quality_and_the_end_reach_both_sides(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    other_id, other_token = await visit_with_link(
        services, world, kiosk="a2-1", person="pa2", visitor="visitor2"
    )
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    async with (
        ws_client.ws_connect(
            "/ws/kiosk", headers={"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
        ) as kiosk,
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ws_client.ws_connect(f"/ws/visitor?token={other_token}") as bystander,
        ws_client.ws_connect(
            "/ws/officer", headers={"Cookie": f"vv_session={officer.cookies['vv_session']}"}
        ) as live,
    ):
        await receive_until(kiosk, "schedule")
        await receive_until(visitor, "visit_status")
        await receive_until(bystander, "visit_status")
        await receive_until(live, "live_snapshot")
        await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        await receive_until(visitor, "answer")
        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": VALID_OFFER})
        await receive_until(kiosk, "answer")

        room = media.rooms[visit_id]
        room.publish(ParticipantStateChanged(visit_id, "visitor", "connected"))
        room.publish(QualityReport(visit_id, "visitor", 29.97, 512_345.0, 3, 0.0423))
        room.publish(VisitWarning(visit_id, 60))
        for sock in (visitor, kiosk):
            assert await receive_until(sock, "participant") == {
                "v": 1,
                "type": "participant",
                "visit_id": visit_id,
                "role": "visitor",
                "state": "connected",
            }
            quality = await receive_until(sock, "quality")
            assert quality["quality"] == {
                "video_fps_in": 30.0,
                "bitrate_in_bps": 512_000.0,
                "packets_lost_in": 3,
                "round_trip_time_s": 0.042,
            }
            assert (await receive_until(sock, "visit_warning"))["seconds_left"] == 60
        for _ in range(20):
            update = await receive_until(live, "live_update")
            rows = {row["id"]: row for row in update["changed"]}
            if visit_id in rows and rows[visit_id]["visitor_quality"] is not None:
                break
        else:
            raise AssertionError("the live list never showed the call")
        assert rows[visit_id]["visitor_media"] == "connected"
        assert rows[visit_id]["kiosk_media"] == "none"
        assert rows[visit_id]["visitor_quality"]["packets_lost_in"] == 3

        room.publish(VisitEnded(visit_id, "terminated", "ended by the facility"))
        for sock in (visitor, kiosk):
            ended = await receive_until(sock, "visit_ended")
            assert ended["reason"] == "terminated"
            assert ended["message"] == "ended by the facility"
        # The other visit's visitor heard nothing of it.
        await bystander.send_json({"type": "ping", "v": 1, "nonce": "n"})
        assert (await receive(bystander))["type"] == "pong"
    assert other_id not in media.rooms


async def test_a_kiosk_joining_after_the_visitor_connected_is_told_the_visitor_is_there(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    async with (
        ws_client.ws_connect(
            "/ws/kiosk", headers={"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
        ) as kiosk,
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
    ):
        await receive_until(kiosk, "schedule")
        await receive_until(visitor, "visit_status")
        await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        await receive_until(visitor, "answer")
        media.rooms[visit_id].publish(ParticipantStateChanged(visit_id, "visitor", "connected"))
        await receive_until(visitor, "participant")  # the event went by before the kiosk joined

        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": VALID_OFFER})
        await receive_until(kiosk, "answer")
        assert await receive(kiosk) == {
            "v": 1,
            "type": "participant",
            "visit_id": visit_id,
            "role": "visitor",
            "state": "connected",
        }


async def test_a_side_that_cannot_connect_is_told_to_both_and_shown_on_the_live_list(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    """Joined is not "in the call": the live list says a side is in it only while its media
    flows, and that it cannot connect once the room says so; both sides are told."""
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    async with (
        ws_client.ws_connect(
            "/ws/kiosk", headers={"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
        ) as kiosk,
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ws_client.ws_connect(
            "/ws/officer", headers={"Cookie": f"vv_session={officer.cookies['vv_session']}"}
        ) as live,
    ):
        welcome = await receive_until(visitor, "welcome")
        assert welcome["connect_timeout_s"] == services.settings.media_connect_timeout_s == 15.0
        await receive_until(kiosk, "schedule")
        await receive_until(live, "live_snapshot")
        await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        await receive_until(visitor, "answer")
        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": VALID_OFFER})
        await receive_until(kiosk, "answer")

        async def row_where(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            for _ in range(20):
                update = await receive_until(live, "live_update")
                rows: dict[int, dict[str, Any]] = {row["id"]: row for row in update["changed"]}
                if visit_id in rows and check(rows[visit_id]):
                    return rows[visit_id]
            raise AssertionError("the live list never showed it")

        room = media.rooms[visit_id]
        at = services.clock.now()
        room.publish(ParticipantStateChanged(visit_id, "kiosk", "connected"))
        room.publish(MediaFlowChanged(visit_id, "kiosk", True, at))
        row = await row_where(lambda r: r["kiosk_media_flowing"])
        # Both joined; only the kiosk's media reaches the relay.
        assert (row["visitor_connected"], row["kiosk_connected"]) == (True, True)
        assert (row["visitor_media_flowing"], row["visitor_cannot_connect"]) == (False, False)

        room.publish(MediaNotConnected(visit_id, "visitor", 15.0))
        for sock in (visitor, kiosk):
            assert await receive_until(sock, "media_not_connected") == {
                "v": 1,
                "type": "media_not_connected",
                "visit_id": visit_id,
                "role": "visitor",
                "waited_s": 15.0,
                "message": "the visitor's media has not connected 15 s after joining; "
                "its network may block the call (UDP)",
            }
        row = await row_where(lambda r: r["visitor_cannot_connect"])
        assert (row["kiosk_cannot_connect"], row["kiosk_media_flowing"]) == (False, True)

        # It gets through (e.g. through TURN): in the call, and no longer "cannot connect".
        room.publish(ParticipantStateChanged(visit_id, "visitor", "connected"))
        room.publish(MediaFlowChanged(visit_id, "visitor", True, at))
        row = await row_where(lambda r: r["visitor_media_flowing"])
        assert row["visitor_cannot_connect"] is False
