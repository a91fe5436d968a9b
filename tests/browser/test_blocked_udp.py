"""A family on a network that blocks UDP (a hotel, a school, some mobile networks).

The visitor's Chromium (127.0.0.1) cannot send or receive UDP to or from the server's media
address (127.0.0.2): nftables drops it in this test's network namespace. The kiosk (a headless
participant on the server's side) is fine. With coturn configured (TURN over TCP, the REST
secret the server hands out) the call goes through the TURN server and is recorded and counted
as any other; without TURN both sides are told in plain words after 15 s and the officer gets
an alert; with a TURN server that was down at the first try, the page retries through TURN
alone after 15 s and gets through.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import select

from tests.browser.support import (
    WebServer,
    check_page,
    new_page,
    page_strings,
    running_server,
    screenshot,
)
from tests.browser.turn_support import (
    BROWSER_ADDRESS,
    RECORD_PEER_CONNECTIONS,
    RELAY_ADDRESS,
    SELECTED_PAIR,
    SERVER_MEDIA_ADDRESS,
    UdpBlock,
    free_tcp_port,
    new_turn_secret,
    require_tool,
    running_coturn,
    turn_settings,
)
from tests.factories import add_visit
from vvserver.client.headless import HeadlessParticipant, ParticipantReport
from vvserver.db.models import AuditEntry, Recording, Visit
from vvserver.domain.visits.join_links import reissue_join_link

CONNECT_TIMEOUT_S = 15.0  # the default VV_MEDIA_CONNECT_TIMEOUT_S, as the issue states it
# Chromium, the server, coturn and the kiosk's aiortc peer share a loaded 2-core machine; the
# officer's alert also goes through a database write, the event bus and the officer's socket.
TOLERANCE_S = 5.0


@pytest.fixture(autouse=True)
def nft_present() -> None:
    require_tool("nft", "nftables (scripts/ensure-services)")


@asynccontextmanager
async def kiosk_joined(
    web: WebServer, visit_id: int, heard: list[dict[str, Any]]
) -> AsyncIterator[asyncio.Task[ParticipantReport]]:
    """The housing-unit kiosk (a headless participant with the test pattern) joins the visit;
    it offers its media at the server's own address, which the block leaves alone."""
    async with web.services.write() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        visit.start_pushed_at = web.services.clock.now()  # joins by the id it is given
    kiosk = HeadlessParticipant(
        web.url,
        role="kiosk",
        token=web.world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        on_message=heard.append,
    )
    task = asyncio.create_task(kiosk.run(180))
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def visitor_page(browser: Browser, web: WebServer, visit_id: int, lang: str) -> Page:
    page = await new_page(browser, web, account="visitor", lang=lang)
    await page.add_init_script(RECORD_PEER_CONNECTIONS)
    await page.goto(f"/visitor/call?visit_id={visit_id}")
    await page.wait_for_load_state("networkidle")
    return page


async def officer_tile(browser: Browser, web: WebServer) -> tuple[Page, Locator]:
    page = await new_page(browser, web, account="officer_a")
    await page.goto("/officer/")
    await page.wait_for_load_state("networkidle")
    return page, page.get_by_role("article", name="PA1 Doe with Visitor")


async def seconds_since_answer(page: Page) -> float:
    """Seconds since the page applied its first answer (when its connect wait began)."""
    answered_at = await page.evaluate("window.__vvFirstAnswerAt")
    assert answered_at is not None, "the page never applied an answer"
    return time.time() - float(answered_at) / 1000


async def remote_video_plays(page: Page) -> None:
    await page.wait_for_function(
        "() => document.getElementById('remote-video').videoWidth > 0", timeout=30_000
    )
    first = await page.evaluate("document.getElementById('remote-video').currentTime")
    await page.wait_for_function(
        "(t) => document.getElementById('remote-video').currentTime > t + 0.5",
        arg=first,
        timeout=10_000,
    )


async def visit_row(web: WebServer, visit_id: int) -> Visit:
    async with web.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        return visit


async def audited_not_connected(web: WebServer, visit_id: int) -> list[dict[str, Any]]:
    async with web.services.read() as session:
        rows = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "visit.media_not_connected",
                AuditEntry.target == f"visit:{visit_id}",
            )
        )
        return [dict(row.details or {}) for row in rows]


def decoded_frames(path: Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            with suppress(av.error.InvalidDataError):
                counts[packet.stream.type] += len(packet.decode())
    return counts


async def finished_recording(web: WebServer, visit_id: int, within: float) -> Recording:
    deadline = time.monotonic() + within
    while True:
        async with web.services.read() as session:
            recording = await session.scalar(
                select(Recording).where(Recording.visit_id == visit_id)
            )
        if recording is not None and recording.state == "finished":
            return recording
        assert time.monotonic() < deadline, f"recording not finished: {recording}"
        await asyncio.sleep(0.2)


async def test_with_udp_blocked_the_call_goes_through_coturn_over_tcp_and_counts_as_usual(
    browser: Browser, tmp_path: Path
) -> None:
    secret = new_turn_secret()
    port = free_tcp_port("127.0.0.1")
    async with (
        running_coturn(tmp_path / "coturn", port, secret) as coturn,
        running_server(tmp_path, **turn_settings(secret, port)) as web,
    ):
        visit_id = await add_visit(web.services, web.world, ends_in=60.0)
        heard: list[dict[str, Any]] = []
        with UdpBlock(BROWSER_ADDRESS, SERVER_MEDIA_ADDRESS) as block:
            async with kiosk_joined(web, visit_id, heard) as kiosk_run:
                page = await visitor_page(browser, web, visit_id, "en")
                officer, card = await officer_tile(browser, web)
                clicked = time.monotonic()
                await page.get_by_role("button", name="Join the visit").click()
                await expect(page.locator("#conn-status")).to_have_text(
                    "Connected.", timeout=30_000
                )
                through_turn = time.monotonic() - clicked
                in_call_since = time.time()
                await remote_video_plays(page)
                pair = await page.evaluate(SELECTED_PAIR)
                # Through the TURN server over TCP, at once: no 15 s wait, no relay-only retry.
                assert pair is not None
                assert pair["local_type"] == "relay", pair
                assert pair["relay_protocol"] == "tcp", pair
                assert pair["local_address"] == RELAY_ADDRESS, pair
                assert pair["remote_address"] == SERVER_MEDIA_ADDRESS, pair
                assert pair["policy"] == "all", pair
                assert through_turn < CONNECT_TIMEOUT_S, through_turn
                await expect(page.locator("#connect-problem")).to_be_hidden()
                await expect(card).to_contain_text(
                    "visitor in the call, kiosk in the call", timeout=10_000
                )
                await screenshot(page, "blocked-udp-call-through-turn")
                await screenshot(officer, "blocked-udp-officer-tile-relayed")
                # The visit's time runs out: recorded and counted as any other call.
                report = await asyncio.wait_for(kiosk_run, 60)
                await expect(page.get_by_role("heading", name="Visit summary")).to_be_visible()
            dropped = block.dropped_packets()
        log = coturn.log_text()
        recording = await finished_recording(web, visit_id, within=30)
        visit = await visit_row(web, visit_id)
        print(
            f"\nblocked UDP, TURN over TCP: remote video {through_turn:.1f} s after Join; "
            f"visitor connected {visit.visitor_connected_s:.1f} s, lost "
            f"{visit.visitor_lost_s:.1f} s; kiosk lost {visit.kiosk_lost_s:.1f} s; "
            f"{dropped} UDP packets dropped by the block"
        )
    assert dropped > 0  # the direct path was tried and blocked: only TURN got through
    assert "ALLOCATE processed, success" in log, log[-3000:]
    assert report.end_reason == "time_up", report
    assert "media_not_connected" not in [m["type"] for m in heard]
    assert visit.state == "completed"
    # Counted from the moment the media flowed to the end of the slot, as for any call.
    in_call = visit.end_at.replace(tzinfo=UTC).timestamp() - in_call_since
    assert abs(visit.visitor_connected_s - in_call) <= TOLERANCE_S, (
        visit.visitor_connected_s,
        in_call,
    )
    assert visit.kiosk_connected_s >= visit.visitor_connected_s
    # The relay costs no time: the relayed visitor loses no more than the kiosk, whose media
    # goes straight to the server (on a starved machine the server's own stalls hit both
    # sides alike), and nothing at all when the kiosk lost nothing.
    assert visit.visitor_lost_s <= visit.kiosk_lost_s + 0.5, (
        visit.visitor_lost_s,
        visit.kiosk_lost_s,
    )
    if visit.kiosk_lost_s == 0.0:
        assert visit.visitor_lost_s == 0.0
    assert await audited_not_connected(web, visit_id) == []
    media = [f for f in recording.files if f["kind"] == "media"]
    assert {f["participant"] for f in media} == {"visitor", "kiosk"}
    for entry in media:
        counts = decoded_frames(web.settings.recordings_dir / recording.directory / entry["name"])
        assert counts["video"] > 100, (entry, counts)
        assert counts["audio"] > 200, (entry, counts)


async def test_with_udp_blocked_and_no_turn_both_sides_and_the_officer_are_told_after_15_s(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_server(tmp_path, **turn_settings("unused", None)) as web:
        visit_id = await add_visit(web.services, web.world, ends_in=300.0)
        heard: list[dict[str, Any]] = []
        es = page_strings("call", "es")
        with UdpBlock(BROWSER_ADDRESS, SERVER_MEDIA_ADDRESS):
            async with kiosk_joined(web, visit_id, heard):
                page = await visitor_page(browser, web, visit_id, "es")
                officer, card = await officer_tile(browser, web)
                await expect(card).to_contain_text("kiosk in the call", timeout=20_000)
                await page.get_by_role("button", name=es["call.join"]).click()
                await expect(card).to_contain_text(
                    "visitor connecting, kiosk in the call", timeout=15_000
                )
                problem = page.locator("#connect-problem")
                await expect(problem).to_contain_text(
                    es["call.connect.failed"], timeout=(CONNECT_TIMEOUT_S + 10) * 1000
                )
                told_after = await seconds_since_answer(page)
                await expect(problem).to_contain_text(es["call.connect.tips"])
                retry = problem.get_by_role("button", name=es["call.connect.retry"])
                await expect(retry).to_be_visible()
                await expect(page.locator("#join-status")).to_have_text(
                    es["call.state.unreachable"]
                )
                await check_page(page, "blocked-udp-visitor-told-es")

                alert = officer.locator("#alert-list")
                await expect(alert).to_contain_text(
                    "The visitor of PA1 Doe cannot connect the call", timeout=10_000
                )
                alerted_after = await seconds_since_answer(page)
                await expect(card).to_contain_text("Visitor cannot connect")
                await expect(card).to_contain_text("visitor cannot connect, kiosk in the call")
                await check_page(officer, "blocked-udp-officer-alert")
        told = [m for m in heard if m.get("type") == "media_not_connected"]
        audited = await audited_not_connected(web, visit_id)
        visit = await visit_row(web, visit_id)
    print(
        f"\nblocked UDP, no TURN: the visitor was told {told_after:.1f} s after the answer, "
        f"the officer alerted {alerted_after:.1f} s after it"
    )
    # 15 s after the answer (when ICE and DTLS began), within the tolerance.
    assert CONNECT_TIMEOUT_S <= told_after <= CONNECT_TIMEOUT_S + TOLERANCE_S
    assert CONNECT_TIMEOUT_S <= alerted_after <= CONNECT_TIMEOUT_S + TOLERANCE_S
    # The kiosk was told too (the kiosk page shows it in words), once.
    assert [(m["role"], m["visit_id"]) for m in told] == [("visitor", visit_id)]
    assert told[0]["waited_s"] >= CONNECT_TIMEOUT_S
    assert [details["role"] for details in audited] == ["visitor"]
    # The visitor never got in: no connected time, and nothing counted as lost either.
    assert visit.visitor_connected_s == 0.0
    assert visit.visitor_lost_s == 0.0


async def test_a_page_whose_first_try_fails_retries_through_turn_alone_and_gets_through(
    browser: Browser, tmp_path: Path
) -> None:
    """The TURN server is down when the visitor joins (a restart): after 15 s the page says
    so, offers again through TURN alone (relay only), and the call goes through."""
    secret = new_turn_secret()
    port = free_tcp_port("127.0.0.1")
    async with running_server(tmp_path, **turn_settings(secret, port)) as web:
        visit_id = await add_visit(web.services, web.world, ends_in=300.0)
        heard: list[dict[str, Any]] = []
        with UdpBlock(BROWSER_ADDRESS, SERVER_MEDIA_ADDRESS):
            async with kiosk_joined(web, visit_id, heard):
                page = await visitor_page(browser, web, visit_id, "en")
                strings = page_strings("call", "en")
                await page.get_by_role("button", name="Join the visit").click()
                # The first offer (no TURN candidate: the server is down) has been answered.
                deadline = time.monotonic() + 10
                while not web.services.participants.is_joined(visit_id, "visitor"):
                    assert time.monotonic() < deadline, "the visitor's offer was not answered"
                    await asyncio.sleep(0.1)
                async with running_coturn(tmp_path / "coturn", port, secret) as coturn:
                    problem = page.locator("#connect-problem")
                    await expect(problem).to_contain_text(
                        strings["call.connect.relay"],
                        timeout=(CONNECT_TIMEOUT_S + 10) * 1000,
                    )
                    told_after = await seconds_since_answer(page)
                    await screenshot(page, "blocked-udp-visitor-retrying-through-turn")
                    await remote_video_plays(page)
                    await expect(problem).to_be_hidden()
                    connected_after = await seconds_since_answer(page)
                    pair = await page.evaluate(SELECTED_PAIR)
                    log = coturn.log_text()
        told = [m for m in heard if m.get("type") == "media_not_connected"]
    print(
        f"\nblocked UDP, TURN down at first: told {told_after:.1f} s after the first answer, "
        f"through TURN alone {connected_after:.1f} s after it"
    )
    assert CONNECT_TIMEOUT_S <= told_after <= CONNECT_TIMEOUT_S + TOLERANCE_S
    assert pair is not None
    assert pair["policy"] == "relay", pair
    assert (pair["local_type"], pair["relay_protocol"]) == ("relay", "tcp"), pair
    assert "ALLOCATE processed, success" in log, log[-3000:]
    assert [m["role"] for m in told] == ["visitor"]


async def test_the_headless_client_also_retries_through_turn_alone_and_gets_through(
    tmp_path: Path,
) -> None:
    """``vvserver client join`` as the visitor, on the blocked address, with the TURN server
    down at its first try: after 15 s it offers through TURN alone and receives the kiosk."""
    secret = new_turn_secret()
    port = free_tcp_port("127.0.0.1")
    async with running_server(tmp_path, **turn_settings(secret, port)) as web:
        visit_id = await add_visit(web.services, web.world, ends_in=300.0)
        issued = await reissue_join_link(web.services, web.world.accounts["visitor"], visit_id)
        token = issued.join_url.rsplit("/", 1)[-1]
        heard: list[dict[str, Any]] = []
        with UdpBlock(BROWSER_ADDRESS, SERVER_MEDIA_ADDRESS):
            async with kiosk_joined(web, visit_id, heard):
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "vvserver",
                    "client",
                    "join",
                    "--server",
                    web.url,
                    "--role",
                    "visitor",
                    "--token",
                    token,
                    "--ice-host",
                    BROWSER_ADDRESS,
                    "--seconds",
                    str(CONNECT_TIMEOUT_S + 30),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + 15
                while not web.services.participants.is_joined(visit_id, "visitor"):
                    assert time.monotonic() < deadline, "the visitor's offer was not answered"
                    await asyncio.sleep(0.1)
                async with running_coturn(tmp_path / "coturn", port, secret) as coturn:
                    output, _ = await asyncio.wait_for(process.communicate(), 60)
                    log = coturn.log_text()
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    summary = lines[-1]["summary"]
    print(f"\nheadless visitor, blocked UDP, TURN down at first: {summary}")
    assert summary["connect_timeouts"] == 1
    assert summary["relay_offers"] == 1
    assert summary["video_frames"] > 30, summary  # the kiosk's video, through TURN
    assert "ALLOCATE processed, success" in log, log[-3000:]
    assert [m["role"] for m in heard if m.get("type") == "media_not_connected"] == ["visitor"]
