"""Visit now in real pages, both ways.

A visitor presses "Visit now"; the kiosk of the person's unit rings and the resident accepts;
both see each other's video and the officers' live board shows the on-demand visit. Then a
resident calls from the kiosk a visitor whose page is open (in Spanish) with "available now"
on: the page rings with sound, the visitor accepts and the call starts.
"""

from __future__ import annotations

from datetime import time

from playwright.async_api import Browser, Page, expect

from tests.browser.support import WebServer, check_page, open_page, page_strings
from tests.browser.test_visit_story import FACILITY_ZONE, moving_video
from tests.store_helpers import set_rules
from vvserver.domain.facilities.rules import HourWindow

KIOSK = "a1-1"
PERSON = "PA1 Doe"
ALL_DAY = tuple(HourWindow(d, time(0, 0), time(0, 0)) for d in range(7))


async def visit_now_is_offered(web: WebServer) -> None:
    await set_rules(
        web.services,
        web.world.facility_a,
        on_demand_enabled=True,
        on_demand_windows=ALL_DAY,
        on_demand_minutes=15,
    )


async def kiosk_page(web: WebServer, browser: Browser) -> Page:
    page = await open_page(browser, web, f"/kiosk/#token={web.world.kiosk_tokens[KIOSK]}",
                           timezone=FACILITY_ZONE)  # fmt: skip
    await expect(page.locator("#idle")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "waiting")
    return page


async def test_a_visitor_presses_visit_now_and_the_resident_accepts_at_the_kiosk(
    web: WebServer, browser: Browser
) -> None:
    await visit_now_is_offered(web)
    kiosk = await kiosk_page(web, browser)
    visitor = await open_page(browser, web, "/visitor/", account="visitor")
    button = visitor.get_by_role("button", name=f"Visit {PERSON} now")
    await expect(button).to_be_visible()
    await check_page(visitor, "visit-now-01-visitor-home")
    await button.click()

    await visitor.wait_for_url("**/visitor/call?visit_id=*")
    await expect(visitor.locator("#ring-status-text")).to_contain_text(f"Calling {PERSON}")
    await expect(visitor.get_by_role("button", name="Join the visit")).to_be_disabled()

    ring = kiosk.get_by_role("heading", name="Incoming video visit")
    await expect(ring).to_be_visible()
    await expect(kiosk.locator("#ring-who")).to_have_text(f"Visitor (sibling) is calling {PERSON}")
    await check_page(kiosk, "visit-now-02-kiosk-ringing")
    await kiosk.get_by_role("button", name="Accept").click()

    # Answered: the kiosk joins by itself, and so does the visitor's page.
    await expect(kiosk.locator("#call")).to_be_visible()
    await moving_video(kiosk, "#remote-video")
    await moving_video(visitor, "#remote-video")
    await check_page(visitor, "visit-now-03-visitor-in-call")

    officer = await open_page(browser, web, "/officer/", account="officer_a")
    tile = officer.get_by_role("article", name=f"{PERSON} with Visitor")
    await expect(tile).to_contain_text("Visit now: the visitor called")
    await expect(tile).to_contain_text(page_strings("officer")["officer.state.live"])
    await check_page(officer, "visit-now-04-officer-board")


async def test_a_resident_calls_a_visitor_whose_page_is_open(
    web: WebServer, browser: Browser
) -> None:
    await visit_now_is_offered(web)
    es = page_strings("visitor", "es")
    visitor = await open_page(browser, web, "/visitor/", account="visitor", lang="es")
    await visitor.get_by_label(es["vnow.available"]).check()
    await expect(visitor.locator("#now-available-status")).to_have_text(es["vnow.available.on"])

    kiosk = await kiosk_page(web, browser)
    await kiosk.get_by_role("button", name="Call a visitor now").click()
    await kiosk.get_by_label("Your booking number").fill("A-1001")
    await check_page(kiosk, "visit-now-05-kiosk-sign-in")
    await kiosk.get_by_role("button", name="Next").click()
    call = kiosk.get_by_role("button", name="Call Visitor (sibling)")
    await expect(call).to_be_visible()
    await check_page(kiosk, "visit-now-06-kiosk-callees")
    await call.click()
    await expect(kiosk.locator("#ring-who")).to_contain_text("Calling Visitor (sibling)")

    dialog = visitor.get_by_role("alertdialog", name=es["vnow.ring.title"])
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"{PERSON} le llama desde Demo County Jail")
    # The page rings aloud: its ring tone plays on a running audio context.
    await expect(visitor.locator("body")).to_have_attribute("data-ring-tone", "running")
    await check_page(visitor, "visit-now-07-visitor-ringing")
    await dialog.get_by_role("button", name=es["vnow.ring.accept"]).click()

    await visitor.wait_for_url("**/visitor/call?visit_id=*")
    await expect(kiosk.locator("#call")).to_be_visible()
    await moving_video(kiosk, "#remote-video")
    await moving_video(visitor, "#remote-video")
    await check_page(kiosk, "visit-now-08-kiosk-in-call")
