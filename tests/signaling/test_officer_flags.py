"""An officer on the live channel flags a moment of a visit; the flag is stored and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import World, add_visit
from tests.signaling.conftest import Client, receive, receive_until
from tests.signaling.test_officer_channel import staff_headers
from vvserver.db.models import AuditEntry, Visit, VisitFlag
from vvserver.domain.services import Services
from vvserver.signaling import officer_channel


async def test_officer_flags_a_moment_over_the_live_channel(
    ws_client: Client, services: Services, world: World
) -> None:
    live = await add_visit(services, world, starts_in=timedelta(minutes=-3), state="live")
    annex = await add_visit(
        services, world, starts_in=timedelta(minutes=-3), state="live", kiosk="b1-1", person="pb1"
    )
    attorney = await add_visit(
        services,
        world,
        starts_in=timedelta(minutes=-3),
        state="live",
        person="pa2",
        kiosk="a1-2",
    )
    async with services.write() as s:
        visit = await s.get(Visit, attorney)
        assert visit is not None
        visit.privileged = True
    headers = await staff_headers(ws_client, world, "officer_a")
    async with ws_client.ws_connect("/ws/officer", headers=headers) as officer:
        await receive_until(officer, "live_snapshot")
        await officer.send_json(
            {"type": "flag", "v": 1, "visit_id": live, "note": "holds up a note"}
        )
        flagged = await receive_until(officer, "flagged")
        assert flagged["flag"]["visit_id"] == live
        assert flagged["flag"]["note"] == "holds up a note"
        assert 180.0 <= flagged["flag"]["offset_s"] < 300.0  # add_visit starts on the minute

        for visit_id, code in ((annex, "not_found"), (attorney, "privileged_visit")):
            await officer.send_json({"type": "flag", "v": 1, "visit_id": visit_id, "note": "x"})
            error = await receive_until(officer, "error")
            assert (error["code"], error["ref"]) == (code, "flag")
        await officer.send_json({"type": "flag", "v": 1, "visit_id": live, "note": ""})
        assert (await receive_until(officer, "error"))["code"] == "invalid_message"

    kiosk_headers = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_headers) as kiosk:
        await receive(kiosk)
        await receive_until(kiosk, "schedule")
        await kiosk.send_json({"type": "flag", "v": 1, "visit_id": live, "note": "x"})
        assert (await receive_until(kiosk, "error"))["code"] == "not_allowed"

    async with services.read() as s:
        flags = list(await s.scalars(select(VisitFlag)))
        audited = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "visit.flag")))
    assert [(f.visit_id, f.note) for f in flags] == [(live, "holds up a note")]
    assert {(a.target, a.outcome, a.component) for a in audited} == {
        (f"visit:{attorney}", "failure", "signaling"),
        (f"visit:{live}", "success", "signaling"),
    }
    assert len(audited) == 2


async def test_a_flag_shows_at_once_on_every_officers_live_list(
    ws_client: Client, services: Services, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(officer_channel, "REFRESH_S", 60.0)  # only a push can bring the update
    live = await add_visit(services, world, starts_in=timedelta(minutes=-3), state="live")
    flagging = await staff_headers(ws_client, world, "officer_a")
    watching = await staff_headers(ws_client, world, "admin_a")
    async with (
        ws_client.ws_connect("/ws/officer", headers=flagging) as officer,
        ws_client.ws_connect("/ws/officer", headers=watching) as colleague,
    ):
        snapshot = await receive_until(colleague, "live_snapshot")
        assert [(row["id"], row["flags"]) for row in snapshot["visits"]] == [(live, 0)]
        await receive_until(officer, "live_snapshot")
        await officer.send_json({"type": "flag", "v": 1, "visit_id": live, "note": "gang sign"})
        await receive_until(officer, "flagged")
        update = await receive_until(colleague, "live_update")
        assert [(row["id"], row["flags"]) for row in update["changed"]] == [(live, 1)]
