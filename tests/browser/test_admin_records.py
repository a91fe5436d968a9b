"""Facility administrators reading the records: the audit log with its chain check, and reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from tests.browser.support import WebServer, check_page, open_page, page_strings
from tests.factories import add_visit

S = page_strings("admin")
NEW_YORK = ZoneInfo("America/New_York")


def medium_date(moment: datetime) -> str:
    """How an English page writes a facility-local date ("Nov 23, 2026")."""
    local = moment.astimezone(NEW_YORK)
    return f"{local:%b} {local.day}, {local.year}"


async def test_the_audit_log_lists_what_happened_filters_it_and_verifies_the_chain(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/kiosks", account="admin_a")
    row = page.get_by_role("row", name="a1-2")
    await row.get_by_role("button", name=S["kiosks.revoke_named"].format(name="a1-2")).click()
    await page.get_by_role("dialog").get_by_role("button", name=S["kiosks.revoke"]).click()
    await expect(row).to_contain_text(S["kiosks.revoked"])

    await page.goto("/admin/audit")
    entries = page.locator("#audit-list tbody tr")
    await expect(entries.first).to_be_visible()
    revoked = page.get_by_role("row", name="kiosk.update")
    await expect(revoked).to_contain_text(web.world.emails["admin_a"])
    # Words for people (with the code kept for filtering), not raw codes and JSON.
    await expect(revoked).to_contain_text(S["audit.action.kiosk.update"])
    await expect(revoked).to_contain_text(f"Kiosk {web.world.kiosks['a1-2']}")
    await expect(revoked).to_contain_text("enabled: no")
    await page.get_by_label("Language").select_option("es")
    await expect(revoked).to_contain_text("Quiosco modificado")
    await expect(revoked).to_contain_text(f"Quiosco {web.world.kiosks['a1-2']}")
    await page.get_by_label("Idioma").select_option("en")

    await page.get_by_label(S["audit.action"]).fill("Kiosk Stuff")
    await page.get_by_role("button", name=S["audit.apply"]).click()
    await expect(page.get_by_label(S["audit.action"])).to_have_attribute("aria-invalid", "true")
    await page.get_by_label(S["audit.action"]).fill("kiosk.")
    await page.get_by_role("button", name=S["audit.apply"]).click()
    await expect(entries).to_have_count(1)
    await expect(entries.first).to_contain_text("kiosk.update")

    await page.get_by_role("button", name=S["audit.verify"]).click()
    message = page.locator("#audit-verify-message")
    await expect(message).to_have_text(verify_ok_pattern())
    await check_page(page, "admin-audit")


def verify_ok_pattern() -> re.Pattern[str]:
    """The "log is intact" message with any positive number of entries checked."""
    before, after = S["audit.verify_ok"].split("{count}")
    return re.compile(re.escape(before) + r"[1-9][0-9]*" + re.escape(after))


async def test_older_audit_entries_come_page_by_page(web: WebServer, browser: Browser) -> None:
    page = await open_page(browser, web, "/admin/kiosks", account="admin_a")
    # Sixty rotations make more entries than one page (50) holds.
    kiosk_id = web.world.kiosks["a1-1"]
    csrf = await page.evaluate(
        "async () => (await (await fetch('/api/auth/session')).json()).csrf_token"
    )
    for _ in range(60):
        rotated = await page.request.post(
            f"/api/kiosks/{kiosk_id}/rotate", headers={"X-CSRF-Token": csrf}
        )
        assert rotated.ok
    await page.goto("/admin/audit")
    entries = page.locator("#audit-list tbody tr")
    await expect(entries).to_have_count(50)
    await page.get_by_role("button", name=S["audit.older"]).click()
    await expect(entries).to_have_count(await entries_in_scope(page))
    ids = [int(i) for i in await entries.evaluate_all("rows => rows.map(r => r.dataset.auditId)")]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)


async def entries_in_scope(page: Page) -> int:
    """How many audit entries the admin may read, counted through the API page by page."""
    total = 0
    before = ""
    while True:
        answer = await (await page.request.get(f"/api/audit?limit=200{before}")).json()
        total += len(answer["items"])
        if not answer["next_before_id"]:
            return total
        before = f"&before_id={answer['next_before_id']}"


async def test_reports_draw_visits_per_day_and_contact_regularity_with_tables(
    web: WebServer, browser: Browser
) -> None:
    now = datetime.now(UTC)
    for days_ago, state in ((3, "completed"), (3, "completed"), (2, "no_show"), (1, "cancelled")):
        await add_visit(web.services, web.world, starts_in=timedelta(days=-days_ago), state=state)
    page = await open_page(browser, web, "/admin/reports", account="admin_a")

    chart = page.get_by_role("img", name=S["reports.per_day_chart"].format(count=4))
    await expect(chart).to_be_visible()
    await expect(chart.locator("rect.bar-completed")).to_have_count(1)
    await expect(chart.locator("rect.bar-no_show")).to_have_count(1)
    await expect(chart.locator("rect.bar-cancelled")).to_have_count(1)

    per_day = page.get_by_role("table", name=S["reports.per_day_table"])
    busiest = per_day.get_by_role("row", name=medium_date(now - timedelta(days=3)))
    # Day, booked, completed, ended by staff, failed, no-show, cancelled.
    await expect(busiest.get_by_role("cell")).to_have_text(
        [medium_date(now - timedelta(days=3)), "2", "2", "0", "0", "0", "0"]
    )
    # Two completed and one no-show: a third of the visits whose time came were missed.
    await expect(page.locator('[data-stat="no_show_rate"] dd').first).to_have_text("33.3%")

    grid = page.get_by_role("img", name=S["reports.regularity_chart"])
    await expect(grid).to_be_visible()
    regularity = page.get_by_role("table", name=S["reports.regularity_table"])
    person = regularity.get_by_role("row", name="PA1 Doe (A-1001)")
    await expect(person).to_be_visible()
    cells = await person.get_by_role("cell").all_inner_texts()
    assert sum(int(n) for n in cells[1:]) == 2
    await check_page(page, "admin-reports")

    # A quiet period: no bars, and every person in custody shows up with no visits at all.
    await page.get_by_label(S["reports.date_from"]).fill("2020-01-01")
    await page.get_by_label(S["reports.date_to"]).fill("2020-01-31")
    await page.get_by_role("button", name=S["reports.show"]).click()
    await expect(page.get_by_text(S["reports.no_visits"])).to_be_visible()
    await expect(per_day).to_have_count(0)
    await expect(person.get_by_role("cell")).to_have_text(["PA1 Doe (A-1001)", "0"])


async def test_the_admin_pages_speak_spanish(web: WebServer, browser: Browser) -> None:
    spanish = page_strings("admin", "es")
    for path, title in (
        ("/admin/", "overview.title"),
        ("/admin/approvals", "approvals.title"),
        ("/admin/rules", "rules.title"),
        ("/admin/reports", "reports.title"),
    ):
        page = await open_page(browser, web, path, account="admin_a", lang="es")
        await expect(page.get_by_role("heading", level=1)).to_have_text(spanish[title])
        await check_page(page, f"admin-es-{path.strip('/').replace('/', '-') or 'overview'}")
        await page.context.close()
