"""Every page, for every role, in English and Spanish, fits a 360-px-wide phone: nothing runs off
the side (long e-mails and names wrap, wide tables scroll inside their own keyboard-reachable
box), and axe-core finds no violation at that size either."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, ViewportSize

from tests.browser.support import WebServer, check_page, new_page
from tests.factories import add_visit

PHONE: ViewportSize = {"width": 360, "height": 740}
PUBLIC_PAGES = ["/", "/signin", "/signup", "/reset-password?token=x", "/verify-email?token=x"]
VISITOR_PAGES = [
    "/visitor/",
    "/visitor/book",
    "/visitor/visits",
    "/visitor/approvals",
    "/visitor/profile",
]
OFFICER_PAGES = ["/officer/", "/officer/kiosks", "/officer/schedule", "/officer/recordings"]
ADMIN_PAGES = [
    "/admin/",
    "/admin/approvals",
    "/admin/people",
    "/admin/kiosks",
    "/admin/staff",
    "/admin/rules",
    "/admin/reports",
    "/admin/audit",
]


# How far the page runs past the screen's right edge, and the outermost elements that do.
OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  const extra = document.documentElement.scrollWidth - width;
  const culprits = [];
  for (const node of document.body.querySelectorAll("*")) {
    const box = node.getBoundingClientRect();
    if (box.right > width + 0.5 && !culprits.some((c) => c.node.contains(node))) {
      culprits.push({ node, what: `${node.tagName.toLowerCase()}#${node.id}.${node.className}` });
    }
  }
  return [extra, culprits.slice(0, 5).map((c) => c.what)];
}
"""


async def overflow(page: Page) -> tuple[int, list[str]]:
    """How many CSS pixels the page is wider than the screen (0: it fits), and what sticks out."""
    extra, culprits = await page.evaluate(OVERFLOW)
    return int(extra), list(culprits)


async def sweep(
    browser: Browser, web: WebServer, role: str, account: str | None, paths: list[str]
) -> None:
    problems = []
    for lang in ("en", "es"):
        page = await new_page(browser, web, account=account, lang=lang)
        await page.set_viewport_size(PHONE)
        for path in paths:
            await page.goto(path)
            await page.wait_for_load_state("networkidle")
            extra, culprits = await overflow(page)
            if extra > 0:
                problems.append(f"{lang} {path}: {extra} px too wide ({', '.join(culprits)})")
            name = path.strip("/").split("?")[0].replace("/", "-") or "home"
            await check_page(page, f"phone-{role}-{lang}-{name}")
        await page.context.close()
    assert not problems, "\n".join(problems)


async def test_public_pages_fit_a_phone(web: WebServer, browser: Browser) -> None:
    await sweep(browser, web, "public", None, PUBLIC_PAGES)


async def test_visitor_pages_fit_a_phone(web: WebServer, browser: Browser) -> None:
    soon = await add_visit(web.services, web.world, starts_in=timedelta(minutes=20))
    await sweep(
        browser, web, "visitor", "visitor", [*VISITOR_PAGES, f"/visitor/call?visit_id={soon}"]
    )


@pytest.mark.parametrize(("role", "account"), [("officer", "officer_a"), ("admin", "admin_a")])
async def test_staff_pages_fit_a_phone(
    web: WebServer, browser: Browser, role: str, account: str
) -> None:
    await add_visit(web.services, web.world, starts_in=timedelta(minutes=-5), minutes=30)
    pages = OFFICER_PAGES if role == "officer" else [*ADMIN_PAGES, *OFFICER_PAGES]
    await sweep(browser, web, role, account, pages)


async def test_the_kiosk_pages_fit_a_small_tablet(web: WebServer, browser: Browser) -> None:
    await sweep(
        browser,
        web,
        "kiosk",
        None,
        ["/kiosk/setup", f"/kiosk/#token={web.world.kiosk_tokens['a1-1']}"],
    )
