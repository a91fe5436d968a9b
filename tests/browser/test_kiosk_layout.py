"""The kiosk call screen fits the kiosk's screen: at 1280x800 and 1920x1080 the person sees the
visitor's video, the time left and the chat with its quick replies, without scrolling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.support import WebServer, check_page
from tests.browser.test_kiosk_page import open_kiosk, visitor_in_call
from tests.factories import add_visit

KIOSK_SCREENS = ((1280, 800), (1920, 1080))
MUST_SEE = {
    "the visitor's video": "#remote-video",
    "the time left": "#time-left",
    "the time-left label": ".time-left",
    "the messages heading": "#chat-title",
    "the last message": "#chat li:last-child",
    "the write button": "#kb-toggle",
}

LAYOUT = """(selectors) => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width,
             height: r.height };
  };
  const root = document.scrollingElement;
  const found = {};
  for (const [name, selector] of Object.entries(selectors)) {
    const el = document.querySelector(selector);
    found[name] = el ? box(el) : null;
  }
  const replies = [...document.querySelectorAll("#quick-replies .quick-reply")].map(box);
  return { width: innerWidth, height: innerHeight, scrollWidth: root.scrollWidth,
           scrollHeight: root.scrollHeight, found, replies };
}"""


def inside(rect: dict[str, float], width: int, height: int) -> bool:
    return (
        rect["width"] > 0
        and rect["height"] > 0
        and rect["left"] >= 0
        and rect["top"] >= 0
        and rect["right"] <= width + 0.5
        and rect["bottom"] <= height + 0.5
    )


async def assert_fits(page: Page, width: int, height: int) -> dict[str, Any]:
    layout: dict[str, Any] = await page.evaluate(LAYOUT, MUST_SEE)
    assert (layout["width"], layout["height"]) == (width, height)
    # The document itself does not scroll, either way.
    assert layout["scrollHeight"] <= height, f"{width}x{height}: scrolls down ({layout})"
    assert layout["scrollWidth"] <= width, f"{width}x{height}: scrolls sideways ({layout})"
    for name, rect in layout["found"].items():
        assert rect is not None, f"{width}x{height}: no {name}"
        assert inside(rect, width, height), f"{width}x{height}: {name} is off screen: {rect}"
    assert len(layout["replies"]) >= 3
    for rect in layout["replies"]:
        assert inside(rect, width, height), f"{width}x{height}: a quick reply is off: {rect}"
    return layout


async def test_the_call_screen_fits_both_kiosk_screens_without_scrolling(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(
        web.services, web.world, ends_in=240.0, started=timedelta(seconds=-3), state="scheduled"
    )
    page = await open_kiosk(browser, web)
    await expect(page.get_by_role("heading", name="Visitor visiting PA1 Doe")).to_be_visible(
        timeout=20_000
    )
    async with visitor_in_call(web, visit_id):
        # The visitor's picture has arrived (its frames have a size).
        await page.wait_for_function(
            "() => document.getElementById('remote-video').videoWidth > 0", timeout=30_000
        )
        await page.get_by_role("button", name="I can't hear you").click()
        await expect(page.locator("#chat li").last).to_have_text("You: I can't hear you")
        for width, height in KIOSK_SCREENS:
            await page.set_viewport_size({"width": width, "height": height})
            layout = await assert_fits(page, width, height)
            # The video is the biggest thing on the screen.
            video = layout["found"]["the visitor's video"]
            assert video["width"] * video["height"] >= 0.3 * width * height, video
            await check_page(page, f"kiosk-call-{width}x{height}")
            # With the on-screen keyboard open the page still does not scroll: the keyboard
            # takes more of the width, and the video and the time stay in view.
            await page.get_by_role("button", name="Write a message").click()
            await expect(page.get_by_role("group", name="Keyboard")).to_be_visible()
            typing = {
                "the visitor's video": "#remote-video",
                "the time left": "#time-left",
                "the message typed": "#chat-keyboard .kb-text",
            }
            opened: dict[str, Any] = await page.evaluate(LAYOUT, typing)
            assert opened["scrollHeight"] <= height, opened
            for name, rect in opened["found"].items():
                assert rect is not None, name
                assert inside(rect, width, height), (name, rect)
            # Every key is on the screen, Send included.
            keys = await page.locator("#chat-keyboard button").evaluate_all(
                "(keys) => keys.map((k) => { const r = k.getBoundingClientRect();"
                " return { left: r.left, top: r.top, right: r.right, bottom: r.bottom,"
                " width: r.width, height: r.height }; })"
            )
            assert len(keys) > 30
            for rect in keys:
                assert inside(rect, width, height), f"{width}x{height}: a key is off: {rect}"
            await check_page(page, f"kiosk-call-keyboard-{width}x{height}")
            await page.get_by_role("button", name="Close the keyboard").click()
