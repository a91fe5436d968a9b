"""Fixtures for the browser tests: ``web`` (a running vvserver) and ``browser`` (Chromium).

They run only inside a network namespace with nothing but ``lo`` (``scripts/test`` does this with
``unshare -n``); elsewhere they are skipped, or fail when ``VV_BROWSER_REQUIRED=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser.support import (
    WebServer,
    in_loopback_only_netns,
    launch_browser,
    missing_tools,
    running_server,
)

RUN_HINT = (
    "run them with: unshare -n sh -c 'ip link set lo up && .venv/bin/pytest -q tests/browser'"
    " (after bash scripts/ensure-browser)"
)


@pytest.fixture(autouse=True)
def browser_environment() -> None:
    """Skip (or fail, when required) unless Chromium, axe-core and a loopback-only netns exist."""
    problems = []
    if not in_loopback_only_netns():
        problems.append("not in a network namespace with only lo")
    missing = missing_tools()
    if missing:
        problems.append("missing " + ", ".join(missing))
    if not problems:
        return
    reason = f"browser tests: {'; '.join(problems)}; {RUN_HINT}"
    if os.environ.get("VV_BROWSER_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebServer]:
    async with running_server(tmp_path) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_browser(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()
