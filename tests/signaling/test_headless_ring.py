"""The headless client rings, accepts and declines Visit-now calls through a real server."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api.test_visit_now import open_visit_now
from tests.factories import PASSWORD, World
from tests.signaling.conftest import Client
from tests.signaling.test_kiosk_channel import until
from vvserver.client.ringer import Ringer, RingPlan, main
from vvserver.db.models import Visit
from vvserver.domain.services import Services


def server(client: Client) -> str:
    return f"http://{client.host}:{client.port}"


async def test_a_headless_visitor_rings_and_a_headless_kiosk_accepts(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    kiosk = Ringer(
        server(ws_client),
        RingPlan(role="kiosk", answer="accept"),
        token=world.kiosk_tokens["a1-1"],
    )
    kiosk_run = asyncio.create_task(kiosk.run(30))
    await until(lambda: services.kiosks_online.is_online(world.kiosks["a1-1"]))
    visitor = Ringer(
        server(ws_client),
        RingPlan(role="visitor", visit_now=world.persons["pa1"]),
        email=world.emails["visitor"],
        password=PASSWORD,
    )
    visitor_report = await visitor.run(30)
    kiosk_report = await kiosk_run
    assert (visitor_report.outcome, visitor_report.error) == ("accepted", None)
    assert (kiosk_report.outcome, kiosk_report.error) == ("accepted", None)
    assert kiosk_report.visit_id == visitor_report.visit_id
    assert visitor_report.join_token  # to go on into the call
    async with services.read() as s:
        visit = await s.get(Visit, visitor_report.visit_id)
        assert visit is not None
        assert visit.state == "ready"


async def test_a_headless_resident_rings_a_visitor_who_declines(
    ws_client: Client, services: Services, world: World
) -> None:
    await open_visit_now(services, world)
    visitor = Ringer(
        server(ws_client),
        RingPlan(role="visitor", answer="decline"),
        email=world.emails["visitor"],
        password=PASSWORD,
    )
    visitor_run = asyncio.create_task(visitor.run(30))
    await until(lambda: services.available_visitors.is_available(world.accounts["visitor"]))
    kiosk = Ringer(
        server(ws_client),
        RingPlan(role="kiosk", resident="A-1001", call="visitor"),
        token=world.kiosk_tokens["a1-1"],
    )
    kiosk_report = await kiosk.run(30)
    visitor_report = await visitor_run
    assert (kiosk_report.outcome, visitor_report.outcome) == ("declined", "declined")
    assert kiosk_report.visit_id == visitor_report.visit_id
    assert "available_visitors" in kiosk_report.received


async def test_the_command_line_withdraws_an_unanswered_ring_and_says_so(
    ws_client: Client, services: Services, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await open_visit_now(services, world)
    async with ws_client.ws_connect(
        "/ws/kiosk", headers={"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    ):
        await until(lambda: services.kiosks_online.is_online(world.kiosks["a1-1"]))
        argv = [
            "--server", server(ws_client), "--role", "visitor", "--email",
            world.emails["visitor"], "--password", PASSWORD,
            "--visit-now", str(world.persons["pa1"]), "--withdraw-after", "0.5",
        ]  # fmt: skip
        code = await asyncio.to_thread(main, argv)
    assert code == 1  # not accepted
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
    assert (summary["outcome"], summary["error"]) == ("withdrawn", None)
    async with services.read() as s:
        visit = await s.get(Visit, summary["visit_id"])
        assert visit is not None
        assert (visit.state, visit.end_reason) == ("declined", "withdrawn by the visitor")


async def test_the_command_line_reports_a_refused_visit_now(
    ws_client: Client, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--server", server(ws_client), "--role", "visitor", "--email", world.emails["visitor"],
        "--password", PASSWORD, "--visit-now", str(world.persons["pa1"]),
    ]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
    assert summary["error"] == "on_demand_off"
