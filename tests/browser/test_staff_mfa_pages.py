"""Two-step sign-in in the pages: an admin makes it required for officers, an officer enrols
with the QR code page, keeps the recovery codes, signs in with one, and the admin resets it."""

from __future__ import annotations

import re

import pyotp
from playwright.async_api import Browser, Page, expect

from tests.browser.support import WebServer, check_page, new_page, open_page, page_strings
from tests.factories import PASSWORD

ADMIN = page_strings("admin")
AUTH = page_strings("auth")


async def password_step(page: Page, email: str) -> None:
    await page.goto("/signin")
    await page.get_by_role("textbox", name="E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_officer_enrols_signs_in_with_a_recovery_code_and_is_reset(
    web: WebServer, browser: Browser
) -> None:
    admin = await open_page(browser, web, "/admin/staff", account="admin_a")
    await admin.get_by_label(ADMIN["staff.policy_officers"]).check()
    await admin.get_by_role("button", name=ADMIN["staff.policy_save"]).click()
    await expect(admin.locator("#vv-status")).to_contain_text(ADMIN["staff.policy_saved_on"])
    row = admin.get_by_role("row", name=re.compile("Officer A"))
    await expect(row).to_contain_text(ADMIN["staff.mfa_off"])
    await check_page(admin, "admin-staff-mfa")

    # The officer's next sign-in goes to enrolment: QR code, the key to type, a first code.
    officer = await new_page(browser, web)
    await password_step(officer, web.world.emails["officer_a"])
    await expect(officer).to_have_url(re.compile(r"/mfa$"))
    await expect(officer.get_by_role("img", name=AUTH["mfa.qr_alt"])).to_be_visible()
    await check_page(officer, "auth-mfa-enrol")
    secret = "".join((await officer.locator("#mfa-secret").inner_text()).split())
    await officer.get_by_label(AUTH["mfa.first_code"]).fill("000000")
    await officer.get_by_role("button", name=AUTH["mfa.confirm"]).click()
    await expect(officer.get_by_role("alert")).to_contain_text("That code is not right")
    await officer.get_by_label(AUTH["mfa.first_code"]).fill(pyotp.TOTP(secret).now())
    await officer.get_by_role("button", name=AUTH["mfa.confirm"]).click()
    await expect(officer.get_by_role("heading", name=AUTH["mfa.codes_title"])).to_be_visible()
    codes = await officer.locator("#mfa-codes code").all_inner_texts()
    assert len(codes) == 10
    await check_page(officer, "auth-mfa-recovery-codes")
    await officer.get_by_role("link", name=AUTH["mfa.continue"]).click()
    await expect(officer).to_have_url(re.compile(r"/officer/$"))

    # Signed out, then in again with a recovery code (the phone is at home).
    await officer.get_by_role("button", name="Sign out", exact=True).click()
    await expect(officer).to_have_url(re.compile(r"/signin(\?next=[^&]*)?$"))
    await password_step(officer, web.world.emails["officer_a"])
    step = officer.get_by_role("heading", name=AUTH["mfa.step_title"])
    await expect(step).to_be_visible()
    await check_page(officer, "auth-mfa-second-step")
    await officer.get_by_label(AUTH["mfa.code"], exact=True).fill(codes[0])
    await officer.get_by_role("button", name=AUTH["mfa.verify"]).click()
    await expect(officer.get_by_text(AUTH["mfa.used_recovery"])).to_be_visible()
    await expect(officer.locator("#mfa-codes-left")).to_contain_text("9")

    # The administrator resets it: the officer is signed out and enrols again next time.
    await admin.reload()
    row = admin.get_by_role("row", name=re.compile("Officer A"))
    await expect(row).to_contain_text(ADMIN["staff.mfa_on"])
    await row.get_by_role(
        "button", name=ADMIN["staff.mfa_reset_named"].format(name="Officer A")
    ).click()
    dialog = admin.get_by_role("dialog")
    await dialog.get_by_role("button", name=ADMIN["staff.mfa_reset"], exact=True).click()
    await expect(row).to_contain_text(ADMIN["staff.mfa_off"])
    await officer.reload()
    await expect(officer).to_have_url(re.compile(r"/signin"))
