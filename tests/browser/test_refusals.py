"""What a user sees when the server says no: wrong password, lockout, a taken slot, a late link."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Browser, Page, expect

from tests.browser.support import WebServer, check_page, open_page, page_strings, wait_for_link
from tests.factories import PASSWORD, add_visit
from vvserver.db.models import Visit
from vvserver.domain.visits.join_links import issue_join_token

WRONG_PASSWORD = "not my password at all"


async def sign_in_on_page(page: Page, email: str, password: str) -> None:
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_wrong_password_is_refused_with_a_message_next_to_the_field(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin")
    await sign_in_on_page(page, web.world.emails["visitor"], WRONG_PASSWORD)

    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(page_strings("auth")["signin.wrong"])
    password = page.get_by_label("Password", exact=True)
    await expect(password).to_have_attribute("aria-invalid", "true")
    await expect(password).to_be_focused()
    assert page.url == f"{web.url}/signin"
    await check_page(page, "refusal-wrong-password")

    # The right password still works afterwards and leads to the visitor's home.
    await sign_in_on_page(page, web.world.emails["visitor"], PASSWORD)
    await page.wait_for_url(f"{web.url}/visitor/")


async def test_too_many_wrong_passwords_lock_the_account_even_for_the_right_one(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin")
    email = web.world.emails["visitor"]
    alert = page.get_by_role("alert")
    for _ in range(web.settings.lockout_failures):
        await sign_in_on_page(page, email, WRONG_PASSWORD)
        await expect(alert).to_have_text(page_strings("auth")["signin.wrong"])
        await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()

    await sign_in_on_page(page, email, PASSWORD)
    locked = page_strings("auth")["signin.locked"].format(minutes=web.settings.lockout_minutes)
    await expect(alert).to_have_text(locked)
    assert page.url == f"{web.url}/signin"
    await check_page(page, "refusal-locked")


async def test_an_address_without_an_account_is_locked_the_same_way(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin")
    alert = page.get_by_role("alert")
    for _ in range(web.settings.lockout_failures):
        await sign_in_on_page(page, "nobody.here@example.org", WRONG_PASSWORD)
        await expect(alert).to_have_text(page_strings("auth")["signin.wrong"])
        await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()

    await sign_in_on_page(page, "nobody.here@example.org", WRONG_PASSWORD)
    locked = page_strings("auth")["signin.locked"].format(minutes=web.settings.lockout_minutes)
    await expect(alert).to_have_text(locked)


async def test_the_owner_lifts_a_lock_with_the_emailed_link(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signin")
    email = web.world.emails["visitor2"]
    for _ in range(web.settings.lockout_failures):
        await sign_in_on_page(page, email, WRONG_PASSWORD)
        await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    link = await wait_for_link(web, email, "/unlock-account")

    await page.goto(link.removeprefix(web.url))
    strings = page_strings("auth")
    await expect(page.locator("#unlock-ok")).to_have_text(strings["unlock.ok"])
    await check_page(page, "refusal-unlocked")
    await page.goto(link.removeprefix(web.url))  # a used link says so
    await expect(page.locator("#unlock-error")).to_have_text(strings["unlock.invalid"])

    await page.goto("/signin")
    await sign_in_on_page(page, email, PASSWORD)
    await page.wait_for_url(f"{web.url}/visitor/")


async def expired_join_link(web: WebServer) -> str:
    """The link e-mailed for a visit that ended ten minutes ago (still its current link)."""
    visit_id = await add_visit(
        web.services, web.world, starts_in=timedelta(minutes=-40), minutes=30, state="completed"
    )
    async with web.services.write() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        token, digest = issue_join_token(
            web.services.secret,
            visit_id=visit.id,
            visitor_id=visit.visitor_id,
            start_at=visit.start_at,
            end_at=visit.end_at,
            join_window_minutes=15,
            issued_at=visit.start_at - timedelta(hours=1),
        )
        visit.join_token_hash = digest
    return f"/join/{token}"


async def test_a_join_link_after_its_visit_says_it_is_not_open_and_offers_no_call(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, await expired_join_link(web))

    refusal = page.locator("#call-refused")
    await expect(refusal).to_have_text(page_strings("call")["call.error.join_link_expired"])
    await expect(refusal).to_have_attribute("role", "alert")
    await expect(page.get_by_role("button", name="Join the visit")).to_be_hidden()
    await expect(page.locator("video:visible")).to_have_count(0)
    await check_page(page, "refusal-join-link-expired")


async def test_a_time_booked_by_someone_else_a_moment_ago_is_refused_and_the_list_refreshed(
    web: WebServer, browser: Browser
) -> None:
    # Two approved visitors of the same person look at the same free times.
    first = await open_page(browser, web, "/visitor/book", account="visitor")
    second = await open_page(browser, web, "/visitor/book", account="visitor2")
    first_choice = first.locator("#slots button").first
    second_choice = second.locator("#slots button").first
    wanted = await first_choice.inner_text()
    assert await second_choice.inner_text() == wanted
    await check_page(second, "refusal-slot-before")

    await first_choice.click()
    await first.get_by_role("button", name="Book this time").click()
    await expect(first.get_by_role("heading", name="Your visit is booked")).to_be_visible()

    # The second visitor's list is a moment old: the same time is still on it.
    await second_choice.click()
    await second.get_by_role("button", name="Book this time").click()
    error = second.locator("#book-error")
    await expect(error).to_have_text(page_strings("visitor")["book.error.slot_taken"])
    await expect(error).to_have_attribute("role", "alert")
    await expect(second.get_by_role("heading", name="Your visit is booked")).to_be_hidden()
    await expect(second.locator("#slots button").first).not_to_have_text(wanted)
    await check_page(second, "refusal-slot-taken")
