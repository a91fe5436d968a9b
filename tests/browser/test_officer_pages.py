"""Officer pages: the live grid (watch, audio, flag, end), alerts, kiosks, schedule, recordings."""

from __future__ import annotations

import asyncio
import re
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, open_page
from tests.factories import PASSWORD, add_visit
from tests.recording_support import Segment, record_visit
from tests.store_helpers import visit_reason, visit_states
from vvserver.client.headless import HeadlessParticipant, ParticipantReport
from vvserver.db.models import Visit, VisitFlag
from vvserver.domain.visits.join_links import reissue_join_link


@asynccontextmanager
async def both_sides_in_call(
    web: WebServer, visit_id: int, kiosk: str = "a1-1"
) -> AsyncIterator[tuple[asyncio.Task[ParticipantReport], asyncio.Task[ParticipantReport]]]:
    """The kiosk and the visitor (headless participants sending a test pattern) join the visit.

    The slot's start counts as announced already, so the kiosk joins by the visit id it is given
    (and does not offer a second time when the scheduler's ``visit_start`` comes).
    """
    async with web.services.write() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        visit.start_pushed_at = web.services.clock.now()
    issued = await reissue_join_link(web.services, web.world.accounts["visitor"], visit_id)
    visitor = HeadlessParticipant(web.url, role="visitor", token=issued.join_url.rsplit("/", 1)[-1])
    device = HeadlessParticipant(
        web.url, role="kiosk", token=web.world.kiosk_tokens[kiosk], visit_id=visit_id
    )
    tasks = (asyncio.create_task(device.run(120)), asyncio.create_task(visitor.run(120)))
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


async def visitor_types(web: WebServer, visit_id: int, text: str) -> None:
    """The signed-in visitor sends a chat message from a second socket of the same visit."""
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address (127.0.0.1)
    async with aiohttp.ClientSession(base_url=web.url, cookie_jar=jar) as http:
        login = {"email": web.world.emails["visitor"], "password": PASSWORD}
        assert (await http.post("/api/auth/login", json=login)).status == 200
        async with http.ws_connect(f"/ws/visitor?visit_id={visit_id}") as socket:
            await socket.send_json({"type": "chat", "v": 1, "text": text})
            async for message in socket:
                data = message.json()
                if data["type"] == "chat":  # the server's copy: stored and sent to all
                    assert data["text"] == text
                    break
                assert data["type"] != "error", data


def tile(page: Page, who: str) -> Locator:
    return page.get_by_role("article", name=who)


async def video_plays(page: Page, selector: str) -> None:
    """A <video> in the page shows real frames: a width, and a clock that moves on."""
    await page.wait_for_function(
        "(s) => document.querySelector(s)?.videoWidth > 0", arg=selector, timeout=20_000
    )
    first = await page.evaluate("(s) => document.querySelector(s).currentTime", selector)
    await page.wait_for_function(
        "([s, t]) => document.querySelector(s).currentTime > t + 0.5",
        arg=[selector, first],
        timeout=10_000,
    )


async def test_an_officer_watches_a_live_visit_listens_flags_it_and_ends_it(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, ends_in=600.0)
    async with both_sides_in_call(web, visit_id) as (kiosk_run, visitor_run):
        page = await open_page(browser, web, "/officer/", account="officer_a")
        card = tile(page, "PA1 Doe with Visitor")
        await expect(card).to_contain_text("visitor in the call, kiosk in the call", timeout=20_000)
        await expect(card).to_contain_text("Kiosk online")
        await expect(card).to_contain_text(re.compile(r"Time lost\s*visitor 0:0\d, kiosk 0:0\d"))
        await expect(page.locator("#connection")).to_have_text("Live feed connected")
        await check_page(page, "officer-live")

        await card.get_by_role("button", name="Watch").click()
        base = f"article[data-visit-id='{visit_id}']"
        await video_plays(page, f'{base} video[aria-label="Visitor\'s video"]')
        await video_plays(page, f"{base} video[aria-label='Kiosk video']")
        audio = card.get_by_role("button", name="Audio")
        await expect(audio).to_have_attribute("aria-pressed", "false")
        await audio.click()
        await expect(audio).to_have_attribute("aria-pressed", "true")
        assert await page.evaluate(f'() => document.querySelector("{base} video").muted') is False
        await check_page(page, "officer-live-watching")

        # A deaf visitor types instead of speaking: the officer watching reads it under the tile.
        await visitor_types(web, visit_id, "can you see the sign I am holding?")
        await expect(card.locator(".chat-list li")).to_contain_text(
            "can you see the sign I am holding?"
        )

        await card.get_by_role("button", name="Flag").click()
        dialog = page.get_by_role("dialog", name="Flag this moment")
        await dialog.get_by_role("button", name="Save flag").click()
        await expect(dialog.get_by_role("alert")).to_have_text("Write a note about what happened.")
        await dialog.get_by_label("Note").fill("holds a paper up to the camera")
        await check_page(page, "officer-live-flag")
        await dialog.get_by_role("button", name="Save flag").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#vv-status")).to_have_text(
            "Flag saved for PA1 Doe with Visitor."
        )
        async with web.services.read() as session:
            notes = (
                await session.scalars(select(VisitFlag.note).where(VisitFlag.visit_id == visit_id))
            ).all()
        assert list(notes) == ["holds a paper up to the camera"]
        await expect(card).to_contain_text("Flagged: 1")  # for every officer watching the list

        await card.get_by_role("button", name="End visit").click()
        confirm = page.get_by_role("dialog", name="End this visit?")
        await confirm.get_by_label("Reason").fill("threats against staff")
        await confirm.get_by_role("button", name="End visit").click()
        await expect(card).to_have_count(0)
        await expect(page.get_by_text("No visits right now.")).to_be_visible()
        kiosk_report, visitor_report = await asyncio.gather(kiosk_run, visitor_run)
    assert kiosk_report.end_reason == visitor_report.end_reason == "terminated"
    assert await visit_states(web.services, visit_id) == ["terminated"]
    assert "threats against staff" in (await visit_reason(web.services, visit_id) or "")


async def test_a_privileged_visit_has_no_watch_controls_and_an_offline_kiosk_raises_an_alert(
    web: WebServer, browser: Browser
) -> None:
    await add_visit(web.services, web.world, ends_in=600.0, started=timedelta(minutes=-30))
    await add_visit(
        web.services,
        web.world,
        ends_in=600.0,
        started=timedelta(seconds=-4),
        kiosk="a1-2",
        state="scheduled",
        privileged=True,
    )
    page = await open_page(browser, web, "/officer/", account="officer_a")
    cards = page.get_by_role("article")
    await expect(cards).to_have_count(2)
    privileged = cards.filter(has_text="Privileged: not monitored or recorded")
    await expect(privileged).to_have_count(1)
    await expect(privileged.get_by_role("button", name="Watch")).to_have_count(0)
    await expect(privileged.get_by_role("button", name="Audio")).to_have_count(0)
    await expect(privileged.get_by_role("button", name="Flag")).to_have_count(0)
    await expect(privileged.get_by_role("button", name="End visit")).to_be_visible()

    # Its slot starts with the kiosk offline: the officer is alerted at once.
    await expect(page.locator("#alert-list")).to_contain_text(
        "Kiosk a1-2 is offline and the visit of PA1 Doe is starting.", timeout=15_000
    )
    await check_page(page, "officer-live-alert")

    # One tile per page: the console pages through the visits.
    await page.get_by_label("Tiles per page").select_option("1")
    await expect(cards).to_have_count(1)
    await expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    await page.get_by_role("button", name="Next page").click()
    await expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    await expect(cards).to_have_count(1)


async def recorded_visit(web: WebServer) -> int:
    """A visit of an hour ago, both sides recorded (the visitor joined 2 s late), one flag."""
    visit_id = await add_visit(
        web.services, web.world, ends_in=-3000.0, started=timedelta(hours=1), state="completed"
    )
    await record_visit(
        web.services,
        visit_id,
        segments=(Segment("kiosk", 1, 0.0, 6.0), Segment("visitor", 1, 2.0, 6.0)),
    )
    async with web.services.write() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        session.add(
            VisitFlag(
                visit_id=visit_id,
                facility_id=web.world.facility_a,
                at=visit.start_at + timedelta(seconds=4),
                offset_s=4.0,
                note="shows a note to the camera",
                created_by=web.world.accounts["officer_a"],
            )
        )
    return visit_id


async def test_an_officer_finds_a_recording_plays_both_sides_in_sync_and_exports_it(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await recorded_visit(web)
    page = await open_page(browser, web, "/officer/recordings", account="officer_a")
    rows = page.locator("#result-rows tr")
    await expect(rows).to_have_count(1)
    await page.get_by_label("Person in custody").select_option(label="Doe, PA2 (A-1002)")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_text("No recordings match.")).to_be_visible()
    await page.get_by_label("Person in custody").select_option(label="Doe, PA1 (A-1001)")
    await page.get_by_label("Kiosk").select_option(label="a1-1")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("PA1 Doe (A-1001)")
    await check_page(page, "officer-recordings")

    await rows.first.get_by_role("link", name="Play the visit of PA1 Doe (A-1001)").click()
    await expect(page).to_have_url(f"{web.url}/officer/playback?visit_id={visit_id}")
    await expect(
        page.get_by_role("heading", name="Recording: PA1 Doe with Visitor")
    ).to_be_visible()
    marker = page.get_by_role("button", name="Go to the flag at 0:04: shows a note to the camera")
    await expect(marker).to_be_visible()
    await check_page(page, "officer-playback")

    # The flag seeks both sides: the kiosk 4 s into its file, the visitor (who joined at 2 s) 2 s.
    await marker.click()
    times = await page.evaluate(
        "() => [document.getElementById('video-kiosk').currentTime,"
        " document.getElementById('video-visitor').currentTime]"
    )
    assert abs(times[0] - 4.0) < 0.3, times
    assert abs(times[1] - 2.0) < 0.3, times
    await page.get_by_role("button", name="Play", exact=True).click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    for side in ("kiosk", "visitor"):
        await page.wait_for_function(
            "(id) => document.getElementById(id).videoWidth > 0", arg=f"video-{side}"
        )
    await page.wait_for_function(
        "() => document.getElementById('video-kiosk').currentTime > 4.8", timeout=10_000
    )
    kiosk_at, visitor_at = await page.evaluate(
        "() => [document.getElementById('video-kiosk').currentTime,"
        " document.getElementById('video-visitor').currentTime]"
    )
    assert abs((kiosk_at - visitor_at) - 2.0) < 0.5, (kiosk_at, visitor_at)

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download evidence (.zip)").click()
    download = await download_info.value
    path = await download.path()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "manifest.json" in names
    assert "SHA256SUMS" in names
    assert sum(name.endswith(".webm") for name in names) == 2


async def test_the_kiosk_board_shows_which_kiosks_are_online_and_their_current_visit(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, ends_in=600.0)
    async with both_sides_in_call(web, visit_id):
        page = await open_page(browser, web, "/officer/kiosks", account="officer_a")
        board = page.get_by_role("table", name="Kiosks of the facility")
        busy = board.get_by_role("row", name="a1-1")
        await expect(busy).to_contain_text("Online", timeout=15_000)
        await expect(busy).to_contain_text("PA1 Doe with Visitor (In progress")
        idle = board.get_by_role("row", name="a1-2")
        await expect(idle).to_contain_text("Offline")
        await expect(idle).to_contain_text("Never")
        await expect(board.get_by_role("row")).to_have_count(4)  # header + the 3 kiosks of A
        await check_page(page, "officer-kiosks")


async def test_the_schedule_lists_the_facilitys_visits_of_a_day(
    web: WebServer, browser: Browser
) -> None:
    first = await add_visit(web.services, web.world, ends_in=1800.0, started=timedelta(0))
    await add_visit(
        web.services,
        web.world,
        ends_in=1800.0,
        started=timedelta(0),
        kiosk="a1-2",
        state="scheduled",
        privileged=True,
    )
    async with web.services.read() as session:
        visit = await session.get(Visit, first)
        assert visit is not None
        day = visit.start_at.astimezone(ZoneInfo("America/New_York")).date()
    page = await open_page(browser, web, "/officer/schedule", account="officer_a")
    today = datetime.now(ZoneInfo("America/New_York")).date()
    await expect(page.get_by_label("Day")).to_have_value(today.isoformat())
    await page.get_by_label("Day").fill(day.isoformat())
    await page.get_by_role("button", name="Show").click()
    rows = page.locator("#schedule-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#schedule-count")).to_contain_text("2 visit(s)")
    await expect(rows.filter(has_text="a1-2 (A1)")).to_contain_text("Privileged")
    await expect(rows.filter(has_text="a1-1 (A1)")).to_contain_text("Starting")
    await check_page(page, "officer-schedule")

    await page.get_by_label("Day").fill((day + timedelta(days=3)).isoformat())
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#schedule-count")).to_contain_text("No visits on")
    await expect(rows).to_have_count(0)


async def test_an_agency_admin_picks_the_facility_on_the_live_grid_in_spanish(
    web: WebServer, browser: Browser
) -> None:
    await add_visit(web.services, web.world, ends_in=600.0, kiosk="b1-1", person="pb1")
    page = await open_page(browser, web, "/officer/", account="agency_admin", lang="es")
    await expect(page.get_by_role("heading", name="Visitas en vivo")).to_be_visible()
    picker = page.get_by_label("Centro")
    await expect(picker).to_be_visible()
    await picker.select_option(label="Demo County Annex")
    await expect(page.get_by_role("article", name="PB1 Doe con Visitor")).to_be_visible()
    await picker.select_option(label="Demo County Jail")
    await expect(page.get_by_text("No hay visitas en este momento.")).to_be_visible()
    await check_page(page, "officer-live-agency-es")


async def test_a_visit_that_never_connected_says_nothing_was_recorded(
    web: WebServer, browser: Browser
) -> None:
    failed = await add_visit(
        web.services, web.world, ends_in=-3000.0, started=timedelta(hours=1), state="failed"
    )
    await record_visit(web.services, failed, segments=())
    one_side = await add_visit(
        web.services, web.world, ends_in=-1000.0, started=timedelta(minutes=40), state="completed"
    )
    await record_visit(web.services, one_side, segments=(Segment("kiosk", 1, 0.0, 6.0),))
    page = await open_page(
        browser, web, f"/officer/playback?visit_id={failed}", account="officer_a"
    )
    await expect(page.get_by_role("alert")).to_have_text(
        "Nothing was recorded: the call never connected."
    )
    await expect(page.locator("video:visible")).to_have_count(0)
    await check_page(page, "officer-playback-nothing-recorded")

    await page.goto(f"/officer/playback?visit_id={one_side}")
    await expect(page.locator("#video-kiosk")).to_be_visible()
    await expect(page.locator("#video-visitor")).to_be_hidden()
    await expect(page.get_by_text("Nothing was recorded from this side")).to_be_visible()
    await check_page(page, "officer-playback-one-side")
