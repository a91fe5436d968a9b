"""The headless client joins a real visit as both sides and the server's clock ends it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import World, add_visit
from tests.signaling.conftest import Client, join_link, start_event
from tests.signaling.test_full_visit import clip, live_client, loopback_ice
from vvserver.client.headless import HeadlessParticipant
from vvserver.client.headless_cli import main
from vvserver.client.sample_clip import Clip
from vvserver.db.models import Facility, Person, Visit
from vvserver.domain.services import Services

pytestmark = pytest.mark.slow
__all__ = ["clip", "live_client", "loopback_ice"]  # fixtures shared with the full-visit test


async def test_two_headless_participants_have_a_visit_that_ends_on_time(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    visit_id = await add_visit(services, world, ends_in=6.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    server = f"http://{live_client.host}:{live_client.port}"
    visitor = HeadlessParticipant(server, role="visitor", token=token, clip=clip)
    kiosk_up = asyncio.Event()

    def on_kiosk_message(message: dict[str, object]) -> None:
        if message["type"] == "schedule":
            kiosk_up.set()

    kiosk = HeadlessParticipant(
        server,
        role="kiosk",
        token=world.kiosk_tokens["a1-1"],
        clip=clip,
        on_message=on_kiosk_message,
    )
    kiosk_run = asyncio.create_task(kiosk.run(max_seconds=20))
    visitor_run = asyncio.create_task(visitor.run(max_seconds=20))
    await asyncio.wait_for(kiosk_up.wait(), timeout=10)  # the kiosk is up: start the slot
    services.events.publish(await start_event(services, visit_id))
    kiosk_report, visitor_report = await asyncio.gather(kiosk_run, visitor_run)

    for report in (kiosk_report, visitor_report):
        assert report.visit_id == visit_id, report
        assert (report.end_reason, report.end_message) == ("time_up", "the visit's time is over")
        assert report.joins == 1
        assert report.video_frames > 30  # seconds of the other side's video
        assert report.audio_frames > 50
    assert "visit_start" in kiosk_report.received
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        assert visit.visitor_joined_at is not None
        assert visit.kiosk_joined_at is not None


async def test_the_command_line_reports_a_refused_token(
    live_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f"http://{live_client.host}:{live_client.port}"
    code = await asyncio.to_thread(
        main, ["--server", server, "--role", "kiosk", "--token", "k1.wrong", "--seconds", "10"]
    )
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert '"code": "invalid_device_token"' in out[0]
    assert '"refused": "invalid_device_token"' in out[-1]


async def test_a_headless_kiosk_confirms_the_persons_pin_before_it_joins(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    async with services.write() as s:
        facility = await s.get(Facility, world.facility_a)
        person = await s.get(Person, world.persons["pa1"])
        assert facility is not None
        assert person is not None
        facility.rules = {**facility.rules, "kiosk_pin_required": True}
        person.pin_hash = services.passwords.hash("2468")
    visit_id = await add_visit(services, world, ends_in=30.0, started=timedelta(seconds=1))
    server = f"http://{live_client.host}:{live_client.port}"
    wrong = HeadlessParticipant(
        server,
        role="kiosk",
        token=world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        clip=clip,
        pin="1111",
    )
    report = await wrong.run(max_seconds=10)
    assert (report.refused, report.joins) == ("wrong_pin", 0)
    right = HeadlessParticipant(
        server,
        role="kiosk",
        token=world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        clip=clip,
        pin="2468",
    )
    report = await right.run(max_seconds=3)
    assert report.refused is None
    assert report.joins == 1
    assert "pin_accepted" in report.received


async def test_a_kiosk_that_joined_at_welcome_ignores_the_slots_start_for_the_same_visit(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    """Started with --visit-id, the kiosk offers at `welcome`; `visit_start` must not re-offer."""
    visit_id = await add_visit(services, world, ends_in=5.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    server = f"http://{live_client.host}:{live_client.port}"
    offered = asyncio.Event()

    def on_kiosk_message(message: dict[str, object]) -> None:
        if message["type"] == "answer":
            offered.set()

    kiosk = HeadlessParticipant(
        server,
        role="kiosk",
        token=world.kiosk_tokens["a1-1"],
        clip=clip,
        visit_id=visit_id,
        on_message=on_kiosk_message,
    )
    visitor = HeadlessParticipant(server, role="visitor", token=token, clip=clip)
    kiosk_run = asyncio.create_task(kiosk.run(max_seconds=20))
    await asyncio.wait_for(offered.wait(), timeout=10)
    services.events.publish(await start_event(services, visit_id))  # arrives after the join
    visitor_report = await visitor.run(max_seconds=20)
    kiosk_report = await kiosk_run

    assert kiosk_report.refused is None
    assert kiosk_report.joins == 1  # one offer, one answer: the slot's start changed nothing
    assert "visit_start" in kiosk_report.received
    assert kiosk_report.end_reason == "time_up"
    assert visitor_report.video_frames > 30
