"""Browser-test support: a real vvserver on 127.0.0.1, Chromium pages signed in, axe-core checks.

The server runs in the test's own event loop (Playwright's async API shares it), with a real
SQLite file, the real clock and the real workers (scheduler, mailer writing ``.eml`` files into
the outbox folder). Chromium is Debian's ``/usr/bin/chromium`` with a fake camera and microphone.
Both must run in a network namespace with only ``lo`` (see ``in_loopback_only_netns``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright._impl._api_structures import SetCookieParam
from playwright.async_api import Browser, BrowserContext, Page, Playwright

from tests.conftest import fast_passwords
from tests.factories import PASSWORD, World, authenticator_code, build_world
from vvserver.app import build_services, create_app
from vvserver.db.migrate import upgrade
from vvserver.domain.services import Services
from vvserver.serving import AppRunner
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LOCALES = {"en": "en-US", "es": "es-ES"}
# Playwright waits this long for a selector or a navigation before failing the test.
DEFAULT_TIMEOUT_MS = 15_000
# Workers poll fast so the scheduler and the mailer keep up with a test's real clock.
WORKER_INTERVAL_S = 0.2


@dataclass
class WebServer:
    """A running vvserver: its address, settings, services and the World it was seeded with."""

    url: str
    settings: Settings
    services: Services
    world: World
    # Session cookies of accounts that signed in with a second factor, reused by new contexts
    # (a person signed in on one computer; each code is taken once, 30 s apart).
    mfa_sessions: dict[str, list[SetCookieParam]] = field(default_factory=dict)
    # The served application (its media service and signaling hub), for server-side steps.
    app: web.Application | None = None

    @property
    def outbox(self) -> Path:
        return self.settings.data_dir / "outbox"


def in_loopback_only_netns() -> bool:
    """True when this process's network namespace has no interface but ``lo``.

    ``socket.if_nameindex`` asks the kernel about this process's own namespace (``/sys/class/net``
    would show the namespace that mounted ``/sys``, i.e. the host's, after ``unshare -n``).
    """
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def missing_tools() -> list[str]:
    """What the browser tests need but this machine lacks (``scripts/ensure-browser`` installs)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    if not AXE_SCRIPT.exists():
        missing.append(str(AXE_SCRIPT.relative_to(REPO_ROOT)))
    return missing


def browser_settings(data_dir: Path, database_url: str, url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="browser-test-secret-0123456789-abcdefgh",
        public_url=url,
        rate_login_per_min=10_000,
        rate_signup_per_min=10_000,
        rate_reset_per_min=10_000,
        ice_servers=[],
        ice_host_addresses=["127.0.0.1"],
        scheduler_interval_s=WORKER_INTERVAL_S,
        mailer_interval_s=WORKER_INTERVAL_S,
    )


@asynccontextmanager
async def running_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[WebServer]:
    """Migrate a SQLite file, seed the World, serve the app with its workers on a free port.

    ``overrides``: settings other than the browser tests' own (e.g. ``turn_urls``).
    """
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'vv.sqlite3'}"
    await upgrade(database_url)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = browser_settings(tmp_path / "data", database_url, url)
    if overrides:
        settings = Settings.model_validate({**settings.model_dump(), **overrides})
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    app = create_app(settings, services=services)
    runner = AppRunner(app, handle_signals=False)
    try:
        await runner.setup()
        await web.SockSite(runner, listener).start()
        yield WebServer(url=url, settings=settings, services=services, world=world, app=app)
    finally:
        # Runs the app's cleanup: rooms closed, workers cancelled, database closed.
        await runner.cleanup()
        listener.close()


async def launch_browser(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


async def sign_in(context: BrowserContext, web_server: WebServer, account: str) -> None:
    """Sign in as a World account through the API; the session cookie lands in ``context``."""
    email = web_server.world.emails[account]
    if account in web_server.mfa_sessions:
        await context.add_cookies(web_server.mfa_sessions[account])
        if (await context.request.get(f"{web_server.url}/api/auth/session")).ok:
            return
        await context.clear_cookies()
    response = await context.request.post(
        f"{web_server.url}/api/auth/login", data={"email": email, "password": PASSWORD}
    )
    if response.status == 202:  # administrators answer with their authenticator's code
        pending = await response.json()
        response = await context.request.post(
            f"{web_server.url}/api/auth/mfa",
            data={"code": await authenticator_code(web_server.services, email)},
            headers={"X-CSRF-Token": pending["csrf_token"]},
        )
        web_server.mfa_sessions[account] = [
            {"name": c["name"], "value": c["value"], "url": web_server.url}
            for c in await context.cookies()
            if c["name"] == "vv_session"
        ]
    assert response.ok, f"signing in as {account} failed: {response.status} {await response.text()}"


async def new_page(
    browser: Browser,
    web_server: WebServer,
    *,
    account: str | None = None,
    lang: str = "en",
    timezone: str | None = None,
) -> Page:
    """A page in a fresh context (camera and microphone allowed), not yet navigated.

    ``timezone`` is the browser's own time zone (an IANA name); None keeps the machine's.
    """
    context = await browser.new_context(
        base_url=web_server.url,
        locale=LOCALES[lang],
        timezone_id=timezone,
        permissions=["camera", "microphone"],
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    if account is not None:
        await sign_in(context, web_server, account)
    return await context.new_page()


async def open_page(
    browser: Browser,
    web_server: WebServer,
    path: str,
    *,
    account: str | None = None,
    lang: str = "en",
    timezone: str | None = None,
) -> Page:
    """A fresh context signed in as ``account`` (a World key such as "visitor"), at ``path``."""
    page = await new_page(browser, web_server, account=account, lang=lang, timezone=timezone)
    await page.goto(path)
    await page.wait_for_load_state("networkidle")
    return page


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact')}): {violation['help']}"
            f" [{violation.get('helpUrl', '')}]"
        )
        for node in violation.get("nodes", [])[:5]:
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    at {node.get('target')}: {summary[:300]}")
    return "\n".join(lines)


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core in the page (WCAG 2.0 and 2.1, levels A and AA) and return its violations."""
    # Evaluated over DevTools, not as a <script> element: the pages' CSP forbids inline scripts.
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    result = await page.evaluate(
        "async (options) => JSON.stringify((await axe.run(document, options)).violations)",
        options,
    )
    violations: list[dict[str, Any]] = json.loads(result)
    return violations


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def check_page(page: Page, name: str) -> None:
    """Save ``test-artifacts/screenshots/<name>.png`` and assert axe-core finds no violations."""
    await screenshot(page, name)
    violations = await axe_violations(page)
    assert not violations, (
        f"axe-core found {len(violations)} accessibility violation(s) on {name} "
        f"({page.url}):\n{describe_violations(violations)}"
    )


def read_outbox(web_server: WebServer, to: str) -> list[EmailMessage]:
    """Every message the mailer wrote for ``to``, oldest first."""
    messages = []
    files = sorted(
        web_server.outbox.glob("notification-*.eml"),
        key=lambda p: int(p.stem.removeprefix("notification-")),
    )
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == to:
            messages.append(message)
    return messages


def links_in(message: EmailMessage, base_url: str) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert isinstance(text, str)
    return re.findall(re.escape(base_url) + r"/[^\s<>\"']+", text)


async def wait_for_link(
    web_server: WebServer, to: str, path_prefix: str, *, timeout_s: float = 10.0
) -> str:
    """The newest link to ``<url><path_prefix>...`` e-mailed to ``to`` (waits for the mailer)."""
    deadline = time.monotonic() + timeout_s
    wanted = web_server.url + path_prefix
    while True:
        found = [
            link
            for message in read_outbox(web_server, to)
            for link in links_in(message, web_server.url)
            if link.startswith(wanted)
        ]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} with a link to {path_prefix} in {timeout_s} s")
        await asyncio.sleep(0.1)


def page_strings(area: str, lang: str = "en") -> dict[str, str]:
    """The translations a page of ``area`` shows (common strings, then the area's own)."""
    strings: dict[str, str] = json.loads(
        (REPO_ROOT / "web" / "i18n" / f"common.{lang}.json").read_text(encoding="utf-8")
    )
    if area:
        area_file = REPO_ROOT / "web" / "i18n" / f"{area}.{lang}.json"
        strings.update(json.loads(area_file.read_text(encoding="utf-8")))
    return strings
