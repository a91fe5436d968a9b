"""The housing-unit kiosk page: set-up, today's schedule, joining by itself at slot time, PIN."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, new_page
from tests.factories import add_visit
from tests.store_helpers import set_rules
from vvserver.client.headless import HeadlessParticipant, ParticipantReport
from vvserver.db.models import Person, VisitMessage
from vvserver.domain.visits.join_links import reissue_join_link

PIN = "2468"


@asynccontextmanager
async def visitor_in_call(web: WebServer, visit_id: int) -> AsyncIterator[HeadlessParticipant]:
    """The visitor (a headless participant sending a test pattern) joins with the join link."""
    issued = await reissue_join_link(web.services, web.world.accounts["visitor"], visit_id)
    token = issued.join_url.rsplit("/", 1)[-1]
    visitor = HeadlessParticipant(web.url, role="visitor", token=token)
    task: asyncio.Task[ParticipantReport] = asyncio.create_task(visitor.run(120))
    try:
        yield visitor
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def remote_video_plays(page: Page) -> None:
    """The visitor's video shows real frames: a width, and a clock that moves on."""
    await expect(page.get_by_label("Your visitor")).to_be_visible(timeout=20_000)
    await page.wait_for_function(
        "() => document.getElementById('remote-video').videoWidth > 0", timeout=20_000
    )
    first = await page.evaluate("() => document.getElementById('remote-video').currentTime")
    await page.wait_for_function(
        "(t) => document.getElementById('remote-video').currentTime > t + 0.5",
        arg=first,
        timeout=10_000,
    )


async def open_kiosk(browser: Browser, web: WebServer, kiosk: str = "a1-1") -> Page:
    """A kiosk browser handed its device token in the address's fragment, as staff set it up."""
    page = await new_page(browser, web)
    await page.goto(f"/kiosk/#token={web.world.kiosk_tokens[kiosk]}")
    return page


async def test_the_kiosk_waits_for_the_slot_joins_by_itself_and_after_a_reload(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(
        web.services, web.world, ends_in=240.0, started=timedelta(seconds=-15), state="scheduled"
    )
    page = await open_kiosk(browser, web)
    # Nobody touches the kiosk: a slot starting within the minute opens the call screen, which
    # waits for the start (its time and a countdown) while the call is set up behind it.
    await expect(page.get_by_role("heading", name="Visitor visiting PA1 Doe")).to_be_visible(
        timeout=20_000
    )
    await expect(page.locator("#call-starts-at")).to_contain_text("The visit starts at")
    await expect(page.locator("#call-countdown")).to_have_text(re.compile(r"^Starts in 0:\d\d$"))
    # The token is kept in the browser and taken out of the address bar.
    assert page.url.endswith("/kiosk/")
    saved = await page.evaluate("() => localStorage.getItem('vv.kiosk.token')")
    assert saved == web.world.kiosk_tokens["a1-1"]
    await check_page(page, "kiosk-waiting")

    # The visitor comes in; at the start both see each other.
    async with visitor_in_call(web, visit_id) as visitor:
        await remote_video_plays(page)
        await expect(page.locator("#call-state")).to_have_text("Connected")
        await expect(page.locator("#time-left")).to_have_text(re.compile(r"^[0-3]:[0-5][0-9]$"))
        await check_page(page, "kiosk-call")

        # The person answers a deaf visitor's chat with a touch: no keyboard on a kiosk.
        await page.get_by_role("button", name="I can't hear you").click()
        await expect(page.locator("#chat li").last).to_have_text("You: I can't hear you")
        # Or types an answer on the on-screen keyboard.
        await page.get_by_role("button", name="Write a message").click()
        keys = page.get_by_role("group", name="Keyboard")
        for key in ["H", "I", "Space", "M", "A", "M", "Á", "Delete", "A"]:
            await keys.get_by_role("button", name=key, exact=True).click()
        await expect(page.get_by_label("Your message")).to_have_text("Hi mama")
        await check_page(page, "kiosk-call-keyboard")
        await keys.get_by_role("button", name="Send", exact=True).click()
        await expect(page.locator("#chat li").last).to_have_text("You: Hi mama")
        await expect(page.get_by_label("Your message")).to_have_text("")
        async with web.services.read() as session:
            in_order = select(VisitMessage.text).order_by(VisitMessage.id)
            sent = (await session.scalars(in_order)).all()
        assert sent == ["I can't hear you", "Hi mama"]  # kept with the visit

        # A reload (power blip, crashed tab) comes back into the same visit by itself.
        await page.reload()
        await expect(page.get_by_role("heading", name="Visitor visiting PA1 Doe")).to_be_visible()
        await remote_video_plays(page)
        assert visitor.report.end_reason is None  # the visit went on for the visitor


async def test_the_kiosk_asks_for_the_persons_pin_on_its_number_pad(
    web: WebServer, browser: Browser
) -> None:
    await set_rules(web.services, web.world.facility_a, kiosk_pin_required=True)
    async with web.services.write() as session:
        person = await session.get(Person, web.world.persons["pa1"])
        assert person is not None
        person.pin_hash = web.services.passwords.hash(PIN)
    visit_id = await add_visit(
        web.services, web.world, ends_in=240.0, started=timedelta(seconds=-3), state="scheduled"
    )
    page = await open_kiosk(browser, web)
    heading = page.get_by_role("heading", name="Enter your PIN to start the visit")
    await expect(heading).to_be_visible(timeout=20_000)
    pad = page.get_by_role("group", name="PIN number pad")
    for digit in "1111":
        await pad.get_by_role("button", name=digit, exact=True).click()
    await expect(page.locator("#pin-entered")).to_contain_text("4 digits")
    await pad.get_by_role("button", name="OK").click()
    await expect(page.get_by_role("alert")).to_contain_text("That PIN is not right.")
    await check_page(page, "kiosk-pin")

    async with visitor_in_call(web, visit_id):
        for digit in PIN:
            await pad.get_by_role("button", name=digit, exact=True).click()
        await pad.get_by_role("button", name="OK").click()
        await expect(page.get_by_role("heading", name="Visitor visiting PA1 Doe")).to_be_visible()
        await remote_video_plays(page)


async def test_staff_set_up_a_kiosk_by_typing_its_token_and_a_refused_token_is_explained(
    web: WebServer, browser: Browser
) -> None:
    page = await new_page(browser, web)
    await page.goto("/kiosk/")
    await expect(page.get_by_role("heading", name="This kiosk is not set up")).to_be_visible()
    await page.get_by_role("link", name="Set up this kiosk").click()
    await expect(page.get_by_role("heading", name="Set up this kiosk")).to_be_visible()
    field = page.get_by_label("Device token")
    await field.fill("not a token")
    await page.get_by_role("button", name="Save and start").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "That is not a device token. Copy it exactly as it was shown."
    )
    await expect(field).to_have_attribute("aria-invalid", "true")
    await check_page(page, "kiosk-setup")

    await field.fill(web.world.kiosk_tokens["a1-2"])
    await page.get_by_role("button", name="Save and start").click()
    await expect(page.get_by_role("heading", name="a1-2")).to_be_visible()
    await expect(page.locator("#schedule-empty")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text(
        "Ready. The visit starts by itself at its time."
    )
    await check_page(page, "kiosk-idle")

    # A token that was rotated or revoked: the kiosk says so instead of retrying for ever.
    await page.goto("/kiosk/#token=k1.revoked-or-rotated-secret")
    await expect(page.get_by_text("The server refused this kiosk's device token")).to_be_visible()


async def test_the_kiosk_speaks_spanish_when_the_browser_does(
    web: WebServer, browser: Browser
) -> None:
    page = await new_page(browser, web, lang="es")
    await page.goto(f"/kiosk/#token={web.world.kiosk_tokens['a1-1']}")
    await expect(page.get_by_role("heading", name="Visitas de hoy")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text(
        "Listo. La visita empieza sola a su hora."
    )
    await check_page(page, "kiosk-idle-es")
