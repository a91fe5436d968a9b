"""Facility administrators at work: approvals with the ID photo, kiosks, staff, rules, blackouts."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta

from playwright.async_api import APIRequestContext, Browser, Page, expect

from tests.browser.support import WebServer, check_page, open_page, page_strings, wait_for_link
from tests.factories import BOOKING_NUMBERS, add_visit
from tests.store_helpers import visit_states

S = page_strings("admin")
NEW_VISITOR = "rosa.visitor@example.com"
# Not "rosa's ...": a password may not contain a part of the e-mail address (context words).
NEW_VISITOR_PASSWORD = "her long secret phrase"


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A small solid-colour PNG: a stand-in for a photographed ID card."""
    rows = b"".join(b"\x00" + b"\x20\x60\xa0" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def visitor_asks_to_visit(web: WebServer, api: APIRequestContext, person: str) -> None:
    """A new visitor signs up, confirms the e-mail, uploads an ID photo and asks to visit."""
    signup = await api.post(
        "/api/auth/signup",
        data={
            "email": NEW_VISITOR,
            "password": NEW_VISITOR_PASSWORD,
            "name": "Rosa Visitor",
            "date_of_birth": "1988-02-03",
            "phone": "+1 555 0199",
        },
    )
    assert signup.status == 202, await signup.text()
    link = await wait_for_link(web, NEW_VISITOR, "/verify-email")
    token = link.split("token=", 1)[1]
    verified = await api.post("/api/auth/verify-email", data={"token": token})
    assert verified.ok, await verified.text()
    login = await api.post(
        "/api/auth/login", data={"email": NEW_VISITOR, "password": NEW_VISITOR_PASSWORD}
    )
    csrf = {"X-CSRF-Token": (await login.json())["csrf_token"]}
    upload = await api.put(
        "/api/me/id-photo", data=tiny_png(), headers={**csrf, "Content-Type": "image/png"}
    )
    assert upload.ok, await upload.text()
    # The person is named by the handle the directory gives for an exact match.
    found = await api.get(
        f"/api/facilities/{web.world.facility_a}/directory",
        params={"last_name": "Doe", "booking_number": BOOKING_NUMBERS[person]},
    )
    [entry] = await found.json()
    request = await api.post(
        "/api/approvals",
        data={"handle": entry["handle"], "relationship": "Mother"},
        headers=csrf,
    )
    assert request.status == 201, await request.text()


async def confirm(page: Page, button_name: str) -> None:
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=button_name, exact=True).click()
    await expect(dialog).to_have_count(0)


async def test_an_admin_checks_the_id_photo_verifies_it_and_approves_the_request(
    web: WebServer, browser: Browser
) -> None:
    visitor_api = (await browser.new_context(base_url=web.url)).request
    await visitor_asks_to_visit(web, visitor_api, "pa2")

    page = await open_page(browser, web, "/admin/approvals", account="admin_a")
    card = page.get_by_role("article", name="Rosa Visitor asks to visit PA2 Doe")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("A-1002")
    await expect(card).to_contain_text(S["approvals.id.pending"])

    await card.get_by_role("button", name=S["approvals.show_photo"]).click()
    photo = card.get_by_role("img", name=S["approvals.photo_alt"].format(name="Rosa Visitor"))
    await expect(photo).to_be_visible()
    assert await photo.evaluate("img => img.naturalWidth") == 24
    await check_page(page, "admin-approvals")

    # Approving before the ID is verified is refused, with the reason next to the buttons.
    await card.get_by_role("button", name=S["approvals.approve"]).click()
    await expect(card.get_by_role("alert")).to_have_text(S["error.id_not_verified"])

    await card.get_by_role("button", name=S["approvals.verify_id"]).click()
    await expect(card).to_contain_text(S["approvals.id.verified"])
    await card.get_by_role("button", name=S["approvals.approve"]).click()
    approved = S["approvals.approved"].format(visitor="Rosa Visitor", person="PA2 Doe")
    await expect(page.get_by_role("status")).to_have_text(approved)
    await expect(page.locator("#queue-empty")).to_have_text(S["approvals.empty"])

    # The visitor now sees the request approved.
    mine = await (await visitor_api.get("/api/approvals")).json()
    assert [(a["person"]["booking_number"], a["status"]) for a in mine] == [("A-1002", "approved")]


async def test_a_denial_needs_a_reason_given_in_a_keyboard_dialog(
    web: WebServer, browser: Browser
) -> None:
    visitor_api = (await browser.new_context(base_url=web.url)).request
    await visitor_asks_to_visit(web, visitor_api, "pa1")
    page = await open_page(browser, web, "/admin/approvals", account="admin_a")
    card = page.get_by_role("article", name="Rosa Visitor asks to visit PA1 Doe")
    await card.get_by_role("button", name=S["approvals.deny"]).click()

    dialog = page.get_by_role("dialog")
    reason = dialog.get_by_label(S["approvals.reason"])
    await expect(reason).to_be_focused()
    await dialog.get_by_role("button", name=S["approvals.deny"]).click()
    await expect(dialog.get_by_text(S["admin.reason_required"])).to_be_visible()
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await reason.fill("We could not confirm the relationship.")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(dialog).to_have_count(0)
    await expect(page.locator("#queue-empty")).to_be_visible()
    mine = await (await visitor_api.get("/api/approvals")).json()
    assert [(a["status"], a["reason"]) for a in mine] == [
        ("denied", "We could not confirm the relationship.")
    ]


async def test_a_new_kiosk_token_is_shown_once_and_rotation_and_revocation_lock_it_out(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/kiosks", account="admin_a")
    await page.get_by_label(S["kiosks.name"]).fill("A2-visits")
    await page.get_by_label(S["kiosks.unit"]).select_option(label="A2")
    await page.get_by_role("button", name=S["kiosks.create"]).click()

    secret = page.get_by_role("region", name=S["kiosks.created_title"].format(name="A2-visits"))
    await expect(secret).to_be_focused()
    token = await page.get_by_role("textbox", name=S["kiosks.token"]).input_value()
    link = await page.get_by_role("textbox", name=S["kiosks.setup_link"]).input_value()
    assert link == f"{web.url}/kiosk/#token={token}"
    row = page.get_by_role("row", name="A2-visits")
    await expect(row).to_contain_text(S["kiosks.offline"])
    await check_page(page, "admin-kiosks-token")

    async def kiosk_may_connect(device_token: str) -> bool:
        answer = await page.request.get(
            "/api/kiosk/schedule", headers={"Authorization": f"Bearer {device_token}"}
        )
        return answer.ok

    assert await kiosk_may_connect(token)
    await secret.get_by_role("button", name=S["kiosks.secret_done"]).click()
    await expect(secret).to_have_count(0)
    await page.reload()
    await expect(row).to_be_visible()
    assert token not in await page.content()

    await row.get_by_role("button", name=S["kiosks.rotate_named"].format(name="A2-visits")).click()
    await confirm(page, S["kiosks.rotate"])
    new_token = await page.get_by_role("textbox", name=S["kiosks.token"]).input_value()
    assert new_token != token
    assert not await kiosk_may_connect(token)
    assert await kiosk_may_connect(new_token)

    await row.get_by_role("button", name=S["kiosks.revoke_named"].format(name="A2-visits")).click()
    await confirm(page, S["kiosks.revoke"])
    await expect(row).to_contain_text(S["kiosks.revoked"])
    assert not await kiosk_may_connect(new_token)
    await check_page(page, "admin-kiosks")


async def test_an_admin_creates_an_officer_and_deactivates_the_account_again(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/staff", account="admin_a")
    await page.get_by_role("button", name=S["staff.create"]).click()
    email = page.get_by_label(S["staff.email"])
    await expect(email).to_be_focused()
    await expect(email).to_have_attribute("aria-invalid", "true")
    await check_page(page, "admin-staff-errors")

    await email.fill("olga.officer@example.org")
    await page.get_by_label(S["staff.name"], exact=True).fill("Olga Officer")
    await page.get_by_label(S["staff.role"]).select_option("officer")
    await page.get_by_label(S["staff.password"]).fill("first-day-password")
    await page.get_by_role("button", name=S["staff.create"]).click()
    row = page.get_by_role("row", name="Olga Officer")
    await expect(row).to_contain_text(S["staff.role.officer"])
    await expect(row).to_contain_text(S["staff.active"])

    login = {"email": "olga.officer@example.org", "password": "first-day-password"}
    officer_api = (await browser.new_context(base_url=web.url)).request
    assert (await officer_api.post("/api/auth/login", data=login)).ok

    await row.get_by_role(
        "button", name=S["staff.deactivate_named"].format(name="Olga Officer")
    ).click()
    await confirm(page, S["staff.deactivate"])
    await expect(row).to_have_count(0)
    await page.get_by_label(S["staff.show_inactive"]).check()
    await expect(row).to_contain_text(S["staff.inactive"])
    assert not (await officer_api.get("/api/auth/session")).ok
    assert not (await officer_api.post("/api/auth/login", data=login)).ok
    await check_page(page, "admin-staff")


async def test_an_admin_changes_the_slot_length_and_adds_a_blackout(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/rules", account="admin_a")
    slot = page.get_by_label(S["rules.label.slot_minutes"]).first
    await slot.fill("2")
    await page.get_by_role("button", name=S["rules.save"]).click()
    await expect(slot).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text(S["rules.out_of_range"].format(min=5, max=240))).to_be_visible()

    await slot.fill("20")
    await page.get_by_label(S["rules.label.warning_seconds"]).first.fill("120, 30")
    await page.get_by_role("button", name=S["rules.save"]).click()
    await expect(page.locator("#rules-saved")).to_have_text(S["rules.saved"])
    facility = await (await page.request.get(f"/api/facilities/{web.world.facility_a}")).json()
    assert facility["rules"]["slot_minutes"] == 20
    assert facility["rules"]["warning_seconds"] == [120, 30]
    await page.reload()
    await expect(page.get_by_label(S["rules.label.slot_minutes"]).first).to_have_value("20")

    await page.get_by_label(S["blackouts.starts"], exact=True).fill("2030-12-24T08:00")
    await page.get_by_label(S["blackouts.ends"], exact=True).fill("2030-12-24T18:30")
    await page.get_by_label(S["blackouts.where"], exact=True).select_option(label="A1")
    await page.get_by_label(S["blackouts.reason"], exact=True).fill("Unit A1 inspection")
    await page.get_by_role("button", name=S["blackouts.add"]).click()
    row = page.get_by_role("row", name="Unit A1 inspection")
    await expect(row).to_contain_text("Dec 24, 2030, 8:00 AM")
    await expect(row).to_contain_text("A1")
    blackouts = await (
        await page.request.get(f"/api/facilities/{web.world.facility_a}/blackouts")
    ).json()
    # 08:00 in New York in December is 13:00 UTC.
    assert [(b["starts_at"][:16], b["unit_id"]) for b in blackouts] == [
        ("2030-12-24T13:00", web.world.unit_a1)
    ]
    await check_page(page, "admin-rules")

    await row.get_by_role("button", name=S["blackouts.remove"]).click()
    await confirm(page, S["blackouts.remove"])
    await expect(page.get_by_text(S["blackouts.none"])).to_be_visible()


async def test_the_overview_counts_waiting_requests_and_offline_kiosks(
    web: WebServer, browser: Browser
) -> None:
    visitor_api = (await browser.new_context(base_url=web.url)).request
    await visitor_asks_to_visit(web, visitor_api, "pa1")
    page = await open_page(browser, web, "/admin/", account="admin_a")
    await expect(page.locator('[data-stat="pending"] dd').first).to_have_text("1")
    await expect(page.locator('[data-stat="offline"] dd').first).to_have_text(
        S["overview.of_total"].format(count=3, total=3)
    )
    await check_page(page, "admin-overview")


async def test_an_agency_admin_switches_facility_and_an_officer_is_sent_away(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/kiosks", account="agency_admin")
    await page.get_by_label(S["admin.facility_choose"], exact=True).select_option(
        label="Demo County Annex"
    )
    await expect(page.get_by_role("row", name="b1-1")).to_be_visible()
    await expect(page.get_by_role("row", name="a1-1")).to_have_count(0)
    await check_page(page, "admin-kiosks-agency")

    officer = await open_page(browser, web, "/admin/staff", account="officer_a")
    await officer.wait_for_url(re.compile(r"/(signin\?next=%2Fadmin%2Fstaff|officer/)$"))
    await expect(officer.get_by_text("Olga", exact=False)).to_have_count(0)
    # Nor does the API hand an officer the staff list behind the page.
    assert (await officer.request.get("/api/staff")).status == 403


async def test_an_admin_adds_a_person_in_custody_to_the_roster(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/admin/people", account="admin_a")
    await expect(page.get_by_role("row", name="PA1 Doe")).to_be_visible()
    await page.get_by_label(S["people.first_name"]).fill("Marco")
    await page.get_by_label(S["people.last_name"]).fill("Silva")
    await page.get_by_label(S["people.booking"]).fill("A 77")
    await page.get_by_label(S["people.unit"]).select_option(label="A2")
    await page.get_by_role("button", name=S["people.add"]).click()
    booking = page.get_by_label(S["people.booking"])
    await expect(booking).to_have_attribute("aria-invalid", "true")
    await expect(booking).to_be_focused()

    await booking.fill("A-7700")
    await page.get_by_role("button", name=S["people.add"]).click()
    await expect(page.get_by_role("row", name="Marco Silva")).to_contain_text("A2")
    await page.get_by_label(S["people.search"]).fill("silva")
    await page.get_by_role("button", name=S["people.search_button"]).click()
    await expect(page.locator("#people-list tbody tr")).to_have_count(1)
    await check_page(page, "admin-people")


async def test_an_admin_releases_a_person_and_their_booked_visits_are_cancelled(
    web: WebServer, browser: Browser
) -> None:
    visit_id = await add_visit(web.services, web.world, starts_in=timedelta(days=2))
    page = await open_page(browser, web, "/admin/people", account="admin_a")
    await page.get_by_role("button", name="Release PA1 Doe").click()
    dialog = page.get_by_role("dialog", name="Release PA1 Doe?")
    await dialog.get_by_role("button", name=S["people.release"]).click()  # no reason yet
    await expect(dialog.get_by_label(S["people.release_reason"])).to_be_focused()
    await dialog.get_by_label(S["people.release_reason"]).fill("released on bond")
    await check_page(page, "admin-people-release")
    await dialog.get_by_role("button", name=S["people.release"]).click()
    await expect(page.locator("#vv-status")).to_have_text(
        "PA1 Doe released. Booked visits cancelled: 1."
    )
    await expect(page.get_by_role("row", name="PA1 Doe")).to_have_count(0)
    assert await visit_states(web.services, visit_id) == ["cancelled"]
