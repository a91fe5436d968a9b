"""One visit from start to end, in real pages: sign-up to the officer playing the recording.

A new visitor signs up, confirms the e-mail, uploads an ID and asks to visit a person; the
facility admin verifies the ID and approves; the visitor books a 2-minute slot and joins early,
into the waiting room; the housing-unit kiosk joins by itself a minute before and waits too; at
slot time both sides see each other's moving video; an officer watches
the visit, turns on its audio, flags it and ends it; the recording is found and plays.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from tests.browser.support import (
    REPO_ROOT,
    WebServer,
    check_page,
    open_page,
    page_strings,
    wait_for_link,
)
from tests.store_helpers import set_rules
from vvserver.domain.facilities.rules import HourWindow

VISITOR_NAME = "Rosa Visitor"
VISITOR_EMAIL = "rosa@example.com"
VISITOR_PASSWORD = "a long enough password"
PERSON = {"last_name": "Doe", "booking_number": "A-1002", "name": "PA2 Doe"}
KIOSK = "a2-1"
# The visitor lives near the jail; the kiosk's clock is the jail's (Demo County Jail).
FACILITY_ZONE = "America/New_York"  # the only kiosk in the person's housing unit
ID_PHOTO = REPO_ROOT / "web" / "icons" / "icon-512.png"
FLAG_NOTE = "Passing a note to the camera"
# Remote video must start within this (slot wait excluded) and keep playing.
MEDIA_TIMEOUT_MS = 30_000


async def slots_start_soon(web: WebServer) -> None:
    """2-minute slots, no lead time, the first one starting within two minutes from now."""
    zone = ZoneInfo(FACILITY_ZONE)
    start = (datetime.now(UTC) + timedelta(seconds=40)).astimezone(zone)
    start = (start + timedelta(minutes=1)).replace(second=0, microsecond=0)
    windows = (
        HourWindow(start.weekday(), start.time(), time(0, 0)),
        HourWindow((start.weekday() + 1) % 7, time(0, 0), time(0, 0)),
    )
    await set_rules(
        web.services, web.world.facility_a, windows=windows, slot_minutes=2, lead_min_minutes=0
    )


async def moving_video(page: Page, selector: str) -> None:
    """The video has frames (videoWidth > 0) and its playback time advances."""
    await page.wait_for_function(
        "(sel) => { const v = document.querySelector(sel);"
        " return v !== null && v.videoWidth > 0 && v.currentTime > 0; }",
        arg=selector,
        timeout=MEDIA_TIMEOUT_MS,
    )
    before = await page.eval_on_selector(selector, "(v) => v.currentTime")
    await asyncio.sleep(1.0)
    after = await page.eval_on_selector(selector, "(v) => v.currentTime")
    assert after > before, f"{selector} on {page.url} is not playing ({before} -> {after})"


async def visitor_signs_up_and_confirms_the_email(web: WebServer, browser: Browser) -> Page:
    page = await open_page(browser, web, "/signup", timezone=FACILITY_ZONE)
    await check_page(page, "story-01-signup")
    await page.get_by_label("Full name").fill(VISITOR_NAME)
    await page.get_by_role("textbox", name="E-mail").fill(VISITOR_EMAIL)
    await page.get_by_label("Password", exact=True).fill(VISITOR_PASSWORD)
    await page.get_by_label("Date of birth").fill("1985-03-14")
    await page.get_by_label("Phone number").fill("+1 555 010 0199")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    await check_page(page, "story-02-signup-done")

    link = await wait_for_link(web, VISITOR_EMAIL, "/verify-email")
    await page.goto(link.removeprefix(web.url))
    await expect(page.get_by_text("Your e-mail address is confirmed.")).to_be_visible()
    await check_page(page, "story-03-email-confirmed")

    await page.goto("/signin")
    await page.get_by_role("textbox", name="E-mail").fill(VISITOR_EMAIL)
    await page.get_by_label("Password", exact=True).fill(VISITOR_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{web.url}/visitor/")
    await page.wait_for_load_state("networkidle")
    await check_page(page, "story-04-visitor-home")
    return page


async def visitor_uploads_an_id_and_asks_to_visit(page: Page) -> None:
    await page.goto("/visitor/profile")
    await page.get_by_label("Photo of your ID (JPEG or PNG, up to 5 MB)").set_input_files(ID_PHOTO)
    await page.get_by_role("button", name="Upload the photo").click()
    status = page.locator("#vv-status")
    await expect(status).to_have_text(page_strings("visitor")["profile.id_uploaded"])
    await check_page(page, "story-05-id-uploaded")

    await page.goto("/visitor/approvals")
    await page.get_by_label("Facility").select_option(label="Demo County Jail")
    await page.get_by_label("Last name").fill(PERSON["last_name"])
    await page.get_by_label("Booking number").fill(PERSON["booking_number"])
    await page.get_by_role("button", name="Find").click()
    await page.get_by_label("Your relationship to them").fill("sister")
    await page.get_by_role("button", name="Send the request").click()
    await expect(status).to_have_text(page_strings("visitor")["approvals.sent"])
    await check_page(page, "story-06-approval-requested")


async def admin_verifies_the_id_and_approves(web: WebServer, browser: Browser) -> None:
    page = await open_page(browser, web, "/admin/approvals", account="admin_a")
    request = page.get_by_role("article", name=f"{VISITOR_NAME} asks to visit {PERSON['name']}")
    await request.get_by_role("button", name="Show ID photo").click()
    await expect(request.get_by_role("img")).to_be_visible()
    await check_page(page, "story-07-admin-approval-queue")
    await request.get_by_role("button", name="ID matches: verify").click()
    await expect(request.get_by_text("Verified")).to_be_visible()
    await request.get_by_role("button", name="Approve").click()
    await expect(request).to_be_hidden()
    await check_page(page, "story-08-admin-approved")
    await page.context.close()


async def visitor_books_the_first_slot(web: WebServer, page: Page) -> None:
    await slots_start_soon(web)
    await page.goto("/visitor/book")
    await expect(page.get_by_label("Person to visit")).to_contain_text(PERSON["name"])
    first_slot = page.locator("#slots button").first
    await expect(first_slot).to_be_visible()
    await check_page(page, "story-09-book")
    await first_slot.click()
    await page.get_by_role("button", name="Book this time").click()
    await expect(page.get_by_role("heading", name="Your visit is booked")).to_be_visible()
    await check_page(page, "story-10-booked")


async def kiosk_is_set_up(web: WebServer, browser: Browser) -> Page:
    page = await open_page(browser, web, "/kiosk/setup", timezone=FACILITY_ZONE)
    await check_page(page, "story-11-kiosk-setup")
    await page.get_by_label("Device token").fill(web.world.kiosk_tokens[KIOSK])
    await page.get_by_role("button", name="Save and start").click()
    await page.wait_for_url(f"{web.url}/kiosk/")
    await expect(page.locator("#schedule")).to_contain_text(PERSON["name"])
    await check_page(page, "story-12-kiosk-idle")
    return page


async def visitor_joins_from_my_visits(page: Page) -> None:
    await page.goto("/visitor/visits")
    await check_page(page, "story-13-my-visits")
    await page.get_by_role("link", name="Join now").click()
    await expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
    await check_page(page, "story-14-waiting-room")
    await page.get_by_role("button", name="Join the visit").click()


async def officer_watches_flags_and_ends_the_visit(web: WebServer, browser: Browser) -> Page:
    page = await open_page(browser, web, "/officer/", account="officer_a")
    tile = page.get_by_role("article", name=f"{PERSON['name']} with {VISITOR_NAME}")
    await tile.get_by_role("button", name="Watch").click()
    await moving_video(page, 'article.tile video[aria-label="Visitor\'s video"]')
    await moving_video(page, 'article.tile video[aria-label="Kiosk video"]')
    audio = tile.get_by_role("button", name="Audio")
    await audio.click()
    await expect(audio).to_have_attribute("aria-pressed", "true")
    await check_page(page, "story-17-officer-watching")

    await tile.get_by_role("button", name="Flag").click()
    await page.get_by_label("Note").fill(FLAG_NOTE)
    await check_page(page, "story-18-officer-flag")
    await page.get_by_role("button", name="Save flag").click()
    await expect(page.get_by_role("dialog")).to_be_hidden()

    await tile.get_by_role("button", name="End visit").click()
    await page.get_by_label("Reason").fill("Rule violation after a warning")
    await page.get_by_role("dialog").get_by_role("button", name="End visit").click()
    await expect(page.get_by_role("dialog")).to_be_hidden()
    return page


async def officer_finds_and_plays_the_recording(page: Page) -> None:
    person = f"{PERSON['name']} ({PERSON['booking_number']})"
    await page.goto("/officer/recordings")
    result = page.get_by_role("row").filter(has_text=person).filter(has_text=VISITOR_NAME)
    await expect(result).to_have_count(1, timeout=MEDIA_TIMEOUT_MS)
    await expect(result).to_contain_text(KIOSK)
    await check_page(page, "story-21-recordings-search")
    await result.get_by_role("link", name=f"Play the visit of {person} with {VISITOR_NAME}").click()
    await page.wait_for_url("**/officer/playback?visit_id=*")
    await expect(page.locator("#flag-list")).to_contain_text(FLAG_NOTE)
    await page.get_by_role("button", name="Play", exact=True).click()
    await moving_video(page, "#video-visitor")
    # The visitor was in the waiting room before the kiosk joined: the flag is where both talk.
    await page.locator("#flag-list").get_by_role("button").click()
    await moving_video(page, "#video-kiosk")
    await check_page(page, "story-22-recording-playback")


async def test_a_visit_from_sign_up_to_the_officer_playing_its_recording(
    web: WebServer, browser: Browser
) -> None:
    visitor = await visitor_signs_up_and_confirms_the_email(web, browser)
    await visitor_uploads_an_id_and_asks_to_visit(visitor)
    await admin_verifies_the_id_and_approves(web, browser)
    await visitor_books_the_first_slot(web, visitor)
    kiosk = await kiosk_is_set_up(web, browser)
    await visitor_joins_from_my_visits(visitor)

    # A minute before the slot the kiosk joins by itself (nobody touches it) and waits with the
    # visitor in the waiting room; at slot time the call opens on both sides.
    await expect(kiosk.locator("#call")).to_be_visible(timeout=150_000)
    await expect(kiosk.locator("#call-wait")).to_be_hidden(timeout=90_000)
    await expect(visitor.locator("#call")).to_be_visible(timeout=10_000)
    await moving_video(kiosk, "#remote-video")
    await moving_video(visitor, "#remote-video")
    await check_page(kiosk, "story-15-kiosk-in-call")
    await check_page(visitor, "story-16-visitor-in-call")

    officer = await officer_watches_flags_and_ends_the_visit(web, browser)
    await expect(visitor.get_by_role("heading", name="Visit summary")).to_be_visible()
    await expect(kiosk.get_by_role("heading", name="The visit has ended")).to_be_visible()
    await check_page(visitor, "story-19-visitor-summary")
    await check_page(kiosk, "story-20-kiosk-ended")

    await officer_finds_and_plays_the_recording(officer)
