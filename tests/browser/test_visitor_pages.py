"""The visitor's pages in a real browser: sign-up to booking, each page axe-clean."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, new_page, open_page, wait_for_link
from tests.factories import PASSWORD, add_visit
from tests.store_helpers import visit_states
from vvserver.db.models import Account, Visit


def small_png() -> bytes:
    """A real 8x8 grey PNG (what a phone camera would send, only smaller)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def uncovered(page: Page, selector: str) -> bool:
    """The element is inside the window and no other element (a toast, a notice) lies over it."""
    covered: bool = await page.evaluate(
        """(selector) => {
          const el = document.querySelector(selector);
          const r = el.getBoundingClientRect();
          if (r.height === 0 || r.top < 0 || r.bottom > innerHeight) return false;
          const overlaps = (o) => !(o.right <= r.left || o.left >= r.right || o.bottom <= r.top
                                    || o.top >= r.bottom);
          for (const other of document.querySelectorAll("body *")) {
            if (other === el || el.contains(other) || other.contains(el)) continue;
            const style = getComputedStyle(other);
            if (!["fixed", "sticky", "absolute"].includes(style.position)) continue;
            if (style.display === "none" || style.visibility === "hidden") continue;
            const o = other.getBoundingClientRect();
            if (o.width > 0 && o.height > 0 && overlaps(o)) return false;
          }
          return true;
        }""",
        selector,
    )
    return covered


async def sign_in_on_page(page: Page, email: str, password: str) -> None:
    await page.get_by_role("textbox", name="E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    async with page.expect_response("**/api/auth/login"):
        await page.get_by_role("button", name="Sign in").click()


async def test_a_new_visitor_signs_up_confirms_the_email_and_lands_at_home(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signup")
    await check_page(page, "auth-signup")
    await page.get_by_label("Full name").fill("Rosa Diaz")
    await page.get_by_role("textbox", name="E-mail").fill("rosa@example.net")
    await page.get_by_label("Password").fill("short")
    await page.get_by_label("Date of birth").fill("2015-04-02")
    await page.get_by_label("Phone number").fill("+1 555 010 0100")
    await page.get_by_role("button", name="Create account").click()
    # Both problems are explained next to their fields, the 18+ rule included.
    await expect(page.get_by_text("must be 10 to 128 characters")).to_be_visible()
    await expect(
        page.get_by_text("You must be 18 or older to have an account. An adult")
    ).to_be_visible()
    await expect(page.get_by_label("Date of birth")).to_have_attribute("aria-invalid", "true")
    await check_page(page, "auth-signup-errors")

    await page.get_by_label("Password").fill("a long enough password")
    await page.get_by_label("Date of birth").fill("1990-04-02")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_focused()
    await check_page(page, "auth-signup-done")

    # The same address again (someone who wants to know whether Rosa has an account): the page
    # says the same, and Rosa is told by e-mail.
    again = await open_page(browser, web, "/signup")
    await again.get_by_label("Full name").fill("Not Rosa")
    await again.get_by_role("textbox", name="E-mail").fill("rosa@example.net")
    await again.get_by_label("Password").fill("another long password")
    await again.get_by_label("Date of birth").fill("1980-01-01")
    await again.get_by_label("Phone number").fill("+1 555 010 0199")
    await again.get_by_role("button", name="Create account").click()
    await expect(again.get_by_role("heading", name="Check your e-mail")).to_be_focused()
    await wait_for_link(web, "rosa@example.net", "/reset-password")

    link = await wait_for_link(web, "rosa@example.net", "/verify-email")
    await page.goto(link.removeprefix(web.url))
    await expect(page.get_by_text("Your e-mail address is confirmed.")).to_be_visible()
    await check_page(page, "auth-verify-email")

    await page.goto("/signin")
    await sign_in_on_page(page, "rosa@example.net", "a long enough password")
    await expect(page).to_have_url(re.compile(r"/visitor/$"))
    await expect(
        page.get_by_text("Upload a photo of your ID so staff can check it.")
    ).to_be_visible()
    await expect(page.get_by_text("Ask to be approved for the person")).to_be_visible()
    await check_page(page, "visitor-home-new")


async def test_sign_in_explains_a_wrong_password_then_the_lockout(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin")
    await check_page(page, "auth-signin")
    email = web.world.emails["visitor2"]
    await sign_in_on_page(page, email, "not the password")
    await expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    await expect(page.get_by_label("Password")).to_be_focused()
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    await check_page(page, "auth-signin-wrong")
    for _ in range(web.settings.lockout_failures):
        await sign_in_on_page(page, email, "still not the password")
    await expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"this address is locked\. Try again in 1[45] min")
    )
    # The right password does not get through while the lock lasts.
    await sign_in_on_page(page, email, PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("this address is locked")
    await expect(page).to_have_url(re.compile(r"/signin$"))


async def test_sign_in_sends_each_role_home_and_honours_next(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin?next=%2Fvisitor%2Fvisits")
    await sign_in_on_page(page, web.world.emails["visitor"], PASSWORD)
    await expect(page).to_have_url(re.compile(r"/visitor/visits$"))

    staff = await open_page(browser, web, "/signin?next=https%3A%2F%2Fevil.example%2F")
    await sign_in_on_page(staff, web.world.emails["officer_a"], PASSWORD)
    await expect(staff).to_have_url(re.compile(r"^" + re.escape(web.url) + r"/officer/$"))


async def test_a_forgotten_password_is_reset_from_the_emailed_link(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/reset-password")
    await check_page(page, "auth-reset-request")
    email = web.world.emails["visitor"]
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    link = await wait_for_link(web, email, "/reset-password")
    await page.goto(link.removeprefix(web.url))
    await page.get_by_label("New password", exact=True).fill("a brand new password")
    await page.get_by_label("Repeat the new password").fill("a different one!!")
    await page.get_by_role("button", name="Set the new password").click()
    await expect(page.get_by_text("The two passwords are not the same.")).to_be_visible()
    await check_page(page, "auth-reset-confirm")
    await page.get_by_label("Repeat the new password").fill("a brand new password")
    await page.get_by_role("button", name="Set the new password").click()
    await expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

    await page.goto("/signin")
    await sign_in_on_page(page, email, "a brand new password")
    await expect(page).to_have_url(re.compile(r"/visitor/$"))


async def test_a_visitor_signs_out_everywhere_from_the_profile(
    web: WebServer, browser: Browser
) -> None:
    phone = await open_page(browser, web, "/visitor/", account="visitor2")
    page = await open_page(browser, web, "/visitor/profile", account="visitor2")
    await check_page(page, "visitor-profile-sessions")
    await page.get_by_role("button", name="Sign out everywhere").click()
    await expect(page).to_have_url(re.compile(r"/signin$"))
    # The other device is signed out too: its next page load goes to the sign-in page.
    await phone.goto("/visitor/visits")
    await expect(phone).to_have_url(re.compile(r"/signin\?next="))


async def test_a_visitor_uploads_a_photo_of_their_id(web: WebServer, browser: Browser) -> None:
    page = await open_page(browser, web, "/visitor/profile", account="newcomer")
    await expect(page.get_by_text("Not uploaded")).to_be_visible()
    await expect(page.get_by_text("is not confirmed yet")).to_be_visible()
    await page.get_by_label("Photo of your ID").set_input_files(
        {"name": "id.png", "mimeType": "image/png", "buffer": small_png()}
    )
    await expect(page.get_by_role("img", name="Preview of the ID photo")).to_be_visible()
    await check_page(page, "visitor-profile-preview")
    await page.get_by_role("button", name="Upload the photo").click()
    await expect(page.get_by_text("Being checked")).to_be_visible()
    async with web.services.read() as session:
        account = await session.get(Account, web.world.accounts["newcomer"])
        assert account is not None
        assert account.id_status == "pending"
        assert account.id_photo_path is not None
    await check_page(page, "visitor-profile")


async def test_a_visitor_finds_a_person_and_asks_to_be_approved(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/visitor/approvals", account="visitor")
    await expect(page.get_by_role("heading", name="PA1 Doe")).to_be_visible()
    await page.get_by_label("Facility").select_option(label="Demo County Jail")
    # The expected format, from the shape of the facility's numbers (an invented example).
    await expect(page.locator("#find-booking-hint")).to_contain_text("for example A-1234")
    await expect(page.get_by_label("Booking number")).to_have_attribute("placeholder", "A-1234")
    await page.get_by_label("Last name").fill("Doe")
    await page.get_by_label("Booking number").fill("A-9999")
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#find-none")).to_contain_text("Nobody matches that last name")
    await expect(page.locator("#find-none")).to_be_visible()
    # Nothing floats over the answer, on a desktop or a phone.
    assert await uncovered(page, "#find-none")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#find-none")).to_be_visible()
    assert await uncovered(page, "#find-none")
    await check_page(page, "visitor-approvals-not-found-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # The number as the person said it on the phone: no prefix, lower-case name.
    await page.get_by_label("Last name").fill("doe")
    await page.get_by_label("Booking number").fill("1002")
    await page.get_by_role("button", name="Find").click()
    # Only what the visitor typed comes back (no first name) until the facility approves.
    found = page.get_by_role("heading", name="Found: Doe (booking number A-1002)")
    await expect(found).to_be_focused()
    await page.get_by_label("I am visiting as").select_option("attorney")
    await page.get_by_label("Your relationship to them").fill("attorney")
    await page.get_by_role("button", name="Send the request").click()
    await expect(page.get_by_text("Attorneys give their bar number.")).to_be_visible()
    await page.get_by_label("Bar number").fill("NY-123456")
    await page.get_by_role("button", name="Send the request").click()
    request = page.locator("#approval-list li").filter(has_text="A-1002")
    await expect(request.get_by_role("heading")).to_have_text("Doe")
    await expect(request).to_contain_text("Waiting for the facility")
    await check_page(page, "visitor-approvals")


async def test_a_visitor_books_a_slot_and_one_taken_meanwhile_is_explained(
    web: WebServer, browser: Browser
) -> None:
    first = await open_page(browser, web, "/visitor/book", account="visitor")
    second = await open_page(browser, web, "/visitor/book", account="visitor2")
    for page in (first, second):
        await page.get_by_label("Person to visit").select_option(label="PA1 Doe (Demo County Jail)")
        await expect(page.locator("#slots button").first).to_be_visible()
    await expect(first.get_by_text("facility's time (America/New_York)")).to_be_visible()
    await check_page(first, "visitor-book")
    # Both pick the same time; the second is told it was taken and sees a fresh list. The first
    # free slot: late in the facility's evening the first free day may have only one left.
    chosen = first.locator("#slots button").first
    label = await chosen.inner_text()
    await chosen.click()
    await first.get_by_role("button", name="Book this time").click()
    await expect(first.get_by_role("heading", name="Your visit is booked")).to_be_focused()
    ics = first.get_by_role("link", name="Add to calendar (.ics)")
    calendar = await first.request.get(web.url + (await ics.get_attribute("href") or ""))
    assert calendar.ok
    assert calendar.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VCALENDAR" in await calendar.text()
    await check_page(first, "visitor-book-done")

    await second.locator("#slots button").filter(has_text=label.splitlines()[0]).first.click()
    await second.get_by_role("button", name="Book this time").click()
    await expect(second.get_by_role("alert")).to_contain_text("Someone else just booked that time")
    await check_page(second, "visitor-book-taken")


async def test_my_visits_join_calendar_cancel_and_the_make_up_offer(
    web: WebServer, browser: Browser
) -> None:
    soon = await add_visit(web.services, web.world, starts_in=timedelta(minutes=5))
    later = await add_visit(
        web.services, web.world, person="pb1", kiosk="b1-1", starts_in=timedelta(days=2)
    )
    failed = await add_visit(web.services, web.world, starts_in=timedelta(days=-1), state="failed")
    async with web.services.write() as session:
        visit = await session.get(Visit, failed)
        assert visit is not None
        visit.credit_flag = True
    page = await open_page(browser, web, "/visitor/visits", account="visitor")
    coming = page.locator("#coming > li")
    await expect(coming).to_have_count(2)
    await expect(coming.nth(0).get_by_role("link", name="Join now")).to_have_attribute(
        "href", f"/visitor/call?visit_id={soon}"
    )
    await expect(coming.nth(1).get_by_role("link", name="Join now")).to_have_count(0)
    # Within the hour before its start, a visit says how soon, as the call page does.
    await expect(coming.nth(0)).to_contain_text(re.compile(r"Starts in [0-5]:\d\d"))
    await expect(coming.nth(1)).to_contain_text("Booked")
    ics = coming.nth(1).get_by_role("link", name="Add to calendar")
    calendar = await page.request.get(web.url + (await ics.get_attribute("href") or ""))
    assert "BEGIN:VEVENT" in await calendar.text()
    await check_page(page, "visitor-visits")

    await coming.nth(1).get_by_role("button", name="Cancel visit").click()
    await coming.nth(1).get_by_role("button", name="Yes, cancel it").click()
    await expect(page.locator("#coming > li")).to_have_count(1)
    await expect(page.locator("#past")).to_contain_text("Cancelled")
    assert await visit_states(web.services, later) == ["cancelled"]

    await (
        page.locator("#past > li")
        .filter(has_text="Failed")
        .get_by_role("link", name="Book the make-up visit")
        .click()
    )
    await expect(page.get_by_role("heading", name="Book your make-up visit")).to_be_visible()
    # The first free slot (late in the facility's evening today may have only one left).
    await page.locator("#slots button").first.click()
    await page.get_by_role("button", name="Book this time").click()
    await expect(page.get_by_role("heading", name="Your visit is booked")).to_be_visible()
    async with web.services.read() as session:
        makeup = await session.scalar(select(Visit.id).where(Visit.makeup_for_visit_id == failed))
    assert makeup is not None


async def test_the_visitor_home_shows_visits_requests_and_id_in_spanish(
    web: WebServer, browser: Browser
) -> None:
    await add_visit(web.services, web.world, starts_in=timedelta(minutes=5))
    page = await new_page(browser, web, account="visitor", lang="es")
    await page.goto("/visitor/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sus visitas por video")
    await expect(page.get_by_role("link", name="Entrar ahora")).to_be_visible()
    await expect(page.get_by_text("Verificada")).to_be_visible()
    await check_page(page, "visitor-home-es")


async def test_on_a_phone_a_visitor_picks_a_day_then_a_time_and_confirms_it_in_both_zones(
    web: WebServer, browser: Browser
) -> None:
    page = await new_page(browser, web, account="visitor", timezone="America/Los_Angeles")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto("/visitor/book")
    await page.get_by_label("Person to visit").select_option(label="PA1 Doe (Demo County Jail)")
    await page.wait_for_load_state("networkidle")  # the list for this person is in
    days = page.locator("#day-list button")
    await expect(days).to_have_count(7)
    # One day's times at a time, not a week-long column.
    await expect(page.locator("#slots .slot-day")).to_have_count(1)
    shown_first = await page.locator("#slots h3").inner_text()
    second_day = page.locator("#day-list button:not([disabled])").nth(1)
    await second_day.click()
    await expect(second_day).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#slots h3")).not_to_have_text(shown_first)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await check_page(page, "visitor-book-phone-day")

    choice = page.locator("#slots button").first
    facility_time = (await choice.inner_text()).splitlines()[0]
    await choice.click()
    confirm = page.get_by_role("region", name="Book this time?")
    await expect(confirm).to_be_visible()
    await expect(page.locator("#confirm-when")).to_contain_text(facility_time)
    await expect(page.locator("#confirm-when")).to_contain_text("America/New_York")
    await expect(page.locator("#confirm-own")).to_contain_text("America/Los_Angeles")
    await check_page(page, "visitor-book-phone-confirm")
    # Nothing is booked until the visitor confirms; going back keeps the chosen day.
    await page.get_by_role("button", name="Choose another time").click()
    await expect(second_day).to_have_attribute("aria-pressed", "true")
    await choice.click()
    await page.get_by_role("button", name="Book this time").click()
    await expect(page.get_by_role("heading", name="Your visit is booked")).to_be_focused()
