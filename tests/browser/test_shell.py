"""The page shell every visitor meets first: language, installability, CSP, accessibility."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Error, Page, Response, expect

from tests.browser.support import WebServer, check_page, new_page, open_page

# Collects every Content-Security-Policy violation the page reports, from before its first script.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


async def test_the_home_page_speaks_english_switches_to_spanish_and_remembers_it(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/", lang="en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Video visits")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("link", name="Create an account")).to_have_attribute(
        "href", "/signup"
    )
    await check_page(page, "home-en")

    await page.get_by_label("Language").select_option("es")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Visitas por video")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await check_page(page, "home-es")

    # A later visit, even to a fresh load of the page, keeps the visitor's choice.
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Visitas por video")
    await expect(page.get_by_label("Idioma")).to_have_value("es")


async def test_a_browser_set_to_spanish_gets_spanish_without_asking(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/", lang="es")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Visitas por video")
    await expect(page.get_by_role("link", name="Crear una cuenta")).to_be_visible()


async def test_the_app_installs_and_its_service_worker_never_keeps_private_data(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/?stay=1", account="visitor")
    manifest: dict[str, Any] = await page.evaluate(
        """async () => {
            const link = document.querySelector('link[rel="manifest"]');
            return (await fetch(link.href)).json();
        }"""
    )
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}

    await page.evaluate("() => navigator.serviceWorker.ready")
    await page.reload()
    assert await page.evaluate("() => navigator.serviceWorker.controller !== null")

    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response))
    profile = await page.evaluate("async () => (await fetch('/api/me')).json()")
    assert profile["email"] == web.world.emails["visitor"]
    api_answers = [r for r in answers if "/api/me" in r.url]
    assert api_answers, "the page's fetch of /api/me was not seen"
    assert not any(r.from_service_worker for r in api_answers)

    cached: list[str] = await page.evaluate(
        """async () => {
            const urls = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) urls.push(request.url);
            }
            return urls;
        }"""
    )
    assert f"{web.url}/assets/core.js" in cached
    assert not [url for url in cached if "/api/" in url or "/ws/" in url]

    # Offline, the shell still opens from the cache, but private data never comes from it.
    await page.context.set_offline(True)
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Video visits")
    failed = await page.evaluate("() => fetch('/api/me').then(() => 'answered', () => 'failed')")
    assert failed == "failed"


async def test_the_home_page_breaks_no_content_security_policy_rule(
    web: WebServer, browser: Browser
) -> None:
    page: Page = await new_page(browser, web)
    console: list[ConsoleMessage] = []
    errors: list[Error] = []
    page.on("console", lambda message: console.append(message))
    page.on("pageerror", lambda error: errors.append(error))
    await page.add_init_script(CSP_LISTENER)
    await page.goto("/")
    await page.wait_for_load_state("networkidle")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Video visits")

    violations = await page.evaluate("() => window.__cspViolations")
    assert violations == []
    csp_messages = [m.text for m in console if "Content Security Policy" in m.text]
    assert csp_messages == []
    assert [str(e) for e in errors] == []


# The page's own translation function, with the strings the kiosk page loaded.
PLURALS = """
async () => {
  const { t } = await import("/assets/core.js");
  return [1, 2, 5].map((count) => t("kiosk.call.warning", { count }));
}
"""


async def test_counts_read_naturally_in_english_and_spanish(
    web: WebServer, browser: Browser
) -> None:
    english = await open_page(browser, web, "/kiosk/", lang="en")
    assert await english.evaluate(PLURALS) == [
        "1 minute left in this visit.",
        "2 minutes left in this visit.",
        "5 minutes left in this visit.",
    ]
    spanish = await open_page(browser, web, "/kiosk/", lang="es")
    assert await spanish.evaluate(PLURALS) == [
        "Queda 1 minuto de esta visita.",
        "Quedan 2 minutos de esta visita.",
        "Quedan 5 minutos de esta visita.",
    ]


async def test_the_header_carries_the_installations_name(web: WebServer, browser: Browser) -> None:
    default = web.services.settings
    web.services.settings = default.model_copy(update={"site_name": "Demo County Jail visits"})
    try:
        page = await open_page(browser, web, "/signin", lang="es")
        await expect(page.locator(".vv-brand")).to_have_text("Demo County Jail visits")
        await expect(page).to_have_title(re.compile(r"· Demo County Jail visits$"))
    finally:
        web.services.settings = default
    page = await open_page(browser, web, "/signin", lang="en")
    await expect(page.locator(".vv-brand")).to_have_text("vvserver visits")
