"""The visitor's call page: waiting room, live call with a kiosk, the e-mailed join link."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WebServer,
    check_page,
    new_page,
    open_page,
    sign_in,
)
from tests.factories import PASSWORD, add_visit
from tests.store_helpers import set_rules
from vvserver.app_keys import HUB, VISIT_MEDIA
from vvserver.client.headless import HeadlessParticipant, ParticipantReport
from vvserver.db.models import Visit
from vvserver.domain.visits.join_links import reissue_join_link
from vvserver.visits_live.handoff import DRAIN_MESSAGE


@asynccontextmanager
async def kiosk_in_call(
    web: WebServer, visit_id: int, heard: list[dict[str, Any]] | None = None
) -> AsyncIterator[HeadlessParticipant]:
    """The housing-unit kiosk (a headless participant sending a test pattern) joins the visit;
    what it receives lands in ``heard``."""
    kiosk = HeadlessParticipant(
        web.url,
        role="kiosk",
        token=web.world.kiosk_tokens["a1-1"],
        visit_id=visit_id,
        on_message=heard.append if heard is not None else None,
    )
    task: asyncio.Task[ParticipantReport] = asyncio.create_task(kiosk.run(120))
    try:
        yield kiosk
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def remote_video_plays(page: Page) -> None:
    """The remote <video> shows real frames: a width, and a clock that moves on."""
    video = page.get_by_label("The person you are visiting")
    await expect(video).to_be_visible(timeout=20_000)
    await page.wait_for_function(
        "() => document.getElementById('remote-video').videoWidth > 0", timeout=20_000
    )
    first = await video.evaluate("v => v.currentTime")
    await page.wait_for_function(
        "(t) => document.getElementById('remote-video').currentTime > t + 0.5",
        arg=first,
        timeout=10_000,
    )


async def test_a_visitor_waits_joins_sees_the_kiosk_chats_and_leaves(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(minutes=-1), minutes=10)
    page = await open_page(browser, web, f"/visitor/call?visit_id={visit_id}", account="visitor")
    await expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
    await expect(page.get_by_text("This visit is monitored and recorded")).to_be_visible()
    # The camera preview runs and the microphone meter moves (Chromium's fake devices beep).
    await page.wait_for_function(
        "() => document.getElementById('preview').videoWidth > 0", timeout=10_000
    )
    await page.wait_for_function(
        "() => document.getElementById('mic-level').value > 0", timeout=10_000
    )
    await check_page(page, "visitor-call-waiting")

    heard: list[dict[str, Any]] = []
    async with kiosk_in_call(web, visit_id, heard):
        await page.get_by_role("button", name="Join the visit").click()
        await remote_video_plays(page)
        await expect(page.locator("#conn-status")).to_have_text("Connected.")
        # Text chat for deaf and hard-of-hearing visitors: sent, shown, and heard at the kiosk.
        await page.get_by_label("Message", exact=True).fill("Hello from Mary")
        await page.get_by_role("button", name="Send message").click()
        await expect(page.get_by_role("log")).to_contain_text("You")
        await expect(page.get_by_role("log")).to_contain_text("Hello from Mary")
        await expect(page.get_by_label("Message", exact=True)).to_have_value("")
        chats = [m for m in heard if m.get("type") == "chat"]
        assert [(m["from"], m["text"]) for m in chats] == [("visitor", "Hello from Mary")]
        await expect(page.locator("#time-left")).to_have_text(re.compile(r"^\d+:\d\d$"))
        await page.get_by_role("button", name="Mute").click()
        await expect(page.get_by_role("button", name="Unmute")).to_have_attribute(
            "aria-pressed", "true"
        )
        await check_page(page, "visitor-call-live")

        await page.get_by_role("button", name="Leave").click()
        await expect(page.get_by_role("heading", name="Visit summary")).to_be_visible()
        await expect(page.get_by_role("button", name="Rejoin the visit")).to_be_visible()
        await check_page(page, "visitor-call-summary")


async def test_a_call_handed_off_by_a_draining_server_comes_back_in_the_page(
    web: WebServer, browser: Browser
) -> None:
    """The server drains with the call on: the page gets ``rejoin``, opens a new socket and
    offers again; once the server takes calls again the visitor sees the kiosk again."""
    assert web.app is not None
    media, hub = web.app[VISIT_MEDIA], web.app[HUB]
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(minutes=-1), minutes=10)
    page = await open_page(browser, web, f"/visitor/call?visit_id={visit_id}", account="visitor")
    heard: list[dict[str, Any]] = []
    async with kiosk_in_call(web, visit_id, heard):
        await page.get_by_role("button", name="Join the visit").click()
        await remote_video_plays(page)
        # What SIGTERM does at the drain deadline (vvserver.node.drain), minus the exit.
        media.start_draining()
        assert await media.hand_off_all() == [visit_id]
        assert await hub.send_rejoin(visit_id, DRAIN_MESSAGE) == 2  # the page and the kiosk
        await expect(page.locator("#conn-status")).not_to_have_text("Connected.")
        media.draining = False  # ... and the server is back
        await remote_video_plays(page)
        await expect(page.locator("#conn-status")).to_have_text("Connected.")
    assert [m["type"] for m in heard].count("rejoin") == 1
    async with web.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        assert visit.state == "live"
    await check_page(page, "visitor-call-after-rejoin")


async def test_the_emailed_join_link_joins_without_signing_in(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(minutes=-1), minutes=10)
    issued = await reissue_join_link(web.services, web.world.accounts["visitor"], visit_id)
    page = await new_page(browser, web)
    await page.goto(issued.join_url.removeprefix(web.url))
    await expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
    # A family visit: the server's status says it is not privileged, so it is monitored.
    await expect(page.get_by_text("This visit is monitored and recorded")).to_be_visible()
    async with kiosk_in_call(web, visit_id):
        await page.get_by_role("button", name="Join the visit").click()
        await remote_video_plays(page)
    await check_page(page, "visitor-join-link-live")


async def test_a_broken_join_link_says_so(web: WebServer, browser: Browser) -> None:
    page = await new_page(browser, web)
    await page.goto("/join/not-a-real-token-0123456789")
    await expect(
        page.get_by_role("alert").filter(has_text="join link is not valid")
    ).to_be_visible()
    await check_page(page, "visitor-join-link-invalid")


async def test_a_visitor_who_blocks_the_camera_is_offered_audio_only(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(minutes=30))
    # A browser that really asks: the camera is not allowed, the microphone is.
    asking = await browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"],
        headless=True,
    )
    try:
        context = await asking.new_context(base_url=web.url, permissions=["microphone"])
        await sign_in(context, web, "visitor")
        page = await context.new_page()
        await page.goto(f"/visitor/call?visit_id={visit_id}")
        await camera_refused_then_audio_only(page)
    finally:
        await asking.close()


async def camera_refused_then_audio_only(page: Page) -> None:
    await expect(page.get_by_text("not allowed to use your camera")).to_be_visible()
    await page.get_by_role("button", name="Continue with audio only").click()
    await expect(page.get_by_text("not allowed to use your camera")).to_be_hidden()
    await page.wait_for_function(
        "() => document.getElementById('mic-level').value > 0", timeout=10_000
    )
    await expect(page.locator("#visit-countdown")).to_have_text(re.compile(r"^Starts in \d+:\d\d$"))
    await check_page(page, "visitor-call-audio-only")


async def officer_terminates(web: WebServer, visit_id: int, reason: str) -> None:
    """An officer ends the visit from the live view (the /ws/officer protocol)."""
    # unsafe: keep cookies for an IP-address host (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = await http.post(
            f"{web.url}/api/auth/login",
            json={"email": web.world.emails["officer_a"], "password": PASSWORD},
        )
        assert login.status == 200
        async with http.ws_connect(web.url.replace("http", "ws", 1) + "/ws/officer") as ws:
            await ws.send_json(
                {"type": "terminate", "v": 1, "visit_id": visit_id, "reason": reason}
            )
            async for frame in ws:
                message = json.loads(frame.data)
                if message["type"] == "ok" and message.get("ref") == "terminate":
                    return
                assert message["type"] != "error", message


async def test_the_visitor_hears_the_time_warning_and_sees_a_summary_when_it_ends(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(minutes=-1), minutes=10)
    async with web.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        end_at = visit.end_at.replace(tzinfo=UTC)
    # A warning due a few seconds after the call starts, by the facility's rules.
    due_in = (end_at - datetime.now(UTC)).total_seconds() - 6
    await set_rules(web.services, web.world.facility_a, warning_seconds=(int(due_in),))
    page = await open_page(browser, web, f"/visitor/call?visit_id={visit_id}", account="visitor")
    async with kiosk_in_call(web, visit_id):
        await page.get_by_role("button", name="Join the visit").click()
        await remote_video_plays(page)
        warning = page.get_by_role("alert").filter(has_text="minutes left in this visit")
        await expect(warning).to_be_visible(timeout=15_000)
        await check_page(page, "visitor-call-warning")
        async with web.services.write() as session:  # the kiosk lost 75 s earlier in the call
            await session.execute(
                update(Visit)
                .where(Visit.id == visit_id)
                .values(kiosk_lost_s=Visit.kiosk_lost_s + 75)
            )
        await officer_terminates(web, visit_id, "testing the end of a call")
        await expect(page.get_by_role("heading", name="Visit summary")).to_be_visible()
    await expect(page.locator("#summary-reason")).to_have_text(
        "The visit was ended by the facility."
    )
    await expect(page.locator("#summary-connected")).to_have_text(re.compile(r"^\d+ min$"))
    await expect(page.locator("#summary-lost")).to_have_text("1 min")
    await expect(page.locator("#summary-lost-sides")).to_have_text(
        re.compile(r"^your side 0:0\d, the facility's side 1:1\d$")
    )
    await expect(page.get_by_role("button", name="Rejoin the visit")).to_be_hidden()
    await check_page(page, "visitor-call-ended")
