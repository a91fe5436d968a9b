"""A family's standing weekly visit, booked by the server as each week's booking window opens
(the server's clock frozen, then moved on), and a legal hold that keeps a recording past its
purge date (the real scheduler and purge, the clock moved past the date)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, open_page, read_outbox
from tests.factories import add_visit
from tests.recording_support import record_visit
from tests.store_helpers import ManualClock
from vvserver.db.models import Recording, SeriesOccurrence, Visit
from vvserver.domain.booking.book import book_visit

SUNDAY_1359 = datetime(2027, 1, 10, 18, 59, tzinfo=UTC)  # 13:59 in New York (facility A)
SUN_17_JAN = datetime(2027, 1, 17, 19, 0, tzinfo=UTC)
SUN_24_JAN = datetime(2027, 1, 24, 19, 0, tzinfo=UTC)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.1)


async def test_a_weekly_visit_books_the_next_sunday_when_its_window_opens(
    web: WebServer, browser: Browser
) -> None:
    clock = ManualClock(SUNDAY_1359)
    web.services.clock = clock
    services, world = web.services, web.world
    # Another family already has next Sunday at 2 PM with the same person.
    await book_visit(
        services,
        visitor_id=world.accounts["visitor2"],
        person_id=world.persons["pa1"],
        start=SUN_17_JAN,
        minors=[],
        actor="test",
    )
    page = await open_page(browser, web, "/visitor/series", account="visitor")
    await page.get_by_label("Person to visit").select_option(label="PA1 Doe (Demo County Jail)")
    await page.get_by_label("Day of the week").select_option(label="Sunday")
    await page.get_by_label("Time (facility time)").fill("14:00")
    await page.get_by_role("button", name="Ask for this weekly visit").click()
    item = page.locator("#series-list > li")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("Every Sunday at 14:00 (America/New_York)")

    async def occurrences() -> list[tuple[str, int | None]]:
        async with services.read() as s:
            rows = await s.execute(
                select(SeriesOccurrence.outcome, SeriesOccurrence.visit_id).order_by(
                    SeriesOccurrence.local_date
                )
            )
            return [(outcome, visit_id) for outcome, visit_id in rows.all()]

    async def first_two() -> bool:
        return len(await occurrences()) == 2

    # The real scheduler books today (its window is open) and reports the 17th as taken.
    await eventually(first_two, "the first two Sundays handled")
    assert [outcome for outcome, _ in await occurrences()] == ["booked", "skipped"]
    await page.reload()
    await expect(item.locator("li.occurrence.booked")).to_have_count(1)
    skipped = item.locator("li.occurrence.skipped")
    await expect(skipped).to_contain_text("The person has another visit at that time.")
    await expect(skipped).to_contain_text("The nearest free times:")
    await expect(skipped.locator("ul li")).to_have_count(3)
    await check_page(page, "visitor-weekly-visits")

    # 24 January's booking window opens at 14:00 today (14 days ahead): one second before,
    # nothing; once the clock passes it, the scheduler books it.
    clock.moment = SUN_24_JAN - timedelta(days=14, seconds=1)
    await asyncio.sleep(1.0)
    assert len(await occurrences()) == 2
    clock.moment = SUN_24_JAN - timedelta(days=14) + timedelta(seconds=1)

    async def third() -> bool:
        return len(await occurrences()) == 3

    await eventually(third, "24 January booked")
    outcome, visit_id = (await occurrences())[-1]
    assert outcome == "booked"
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        assert (visit.start_at, visit.state) == (SUN_24_JAN, "scheduled")
    await page.reload()
    await expect(item.locator("li.occurrence.booked")).to_have_count(2)

    async def mailed() -> bool:
        booked = [
            m
            for m in read_outbox(web, world.emails["visitor"])
            if str(m["Subject"]).startswith("Video visit booked")
        ]
        return len(booked) == 2

    await eventually(mailed, "two booking e-mails (with join link and .ics)")


async def test_a_held_recording_outlives_its_purge_date(web: WebServer, browser: Browser) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    web.services.clock = clock
    services = web.services
    held = await add_visit(
        services, web.world, ends_in=-3000.0, started=timedelta(hours=1), state="completed"
    )
    other = await add_visit(
        services,
        web.world,
        ends_in=-3000.0,
        started=timedelta(hours=1),
        state="completed",
        kiosk="a1-2",
        visitor="visitor2",
    )
    held_recording = await record_visit(services, held)
    other_recording = await record_visit(services, other)

    page = await open_page(browser, web, "/officer/recordings", account="admin_a")
    await expect(page.locator("#result-rows tr")).to_have_count(2)
    control = page.locator(f'.hold-control[data-visit-id="{held}"]')
    await expect(control).to_contain_text("No hold")
    await control.get_by_role("button", name="Place legal hold").click()
    await control.get_by_label("Why hold the recording").fill("Subpoena 2027-114")
    await control.get_by_role("button", name="Place hold").click()
    await expect(control).to_contain_text("On legal hold")
    await expect(control.get_by_role("button", name="Lift legal hold")).to_be_visible()
    await check_page(page, "officer-recordings-legal-hold")

    # Thirty-one days on, past both recordings' purge date: the real purge job runs.
    clock.moment = now + timedelta(days=31)

    async def state_of(recording_id: int) -> str:
        async with services.read() as s:
            row = await s.get(Recording, recording_id)
            assert row is not None
            return row.state

    async def other_purged() -> bool:
        return await state_of(other_recording) == "purged"

    await eventually(other_purged, "the recording without a hold purged")
    assert await state_of(held_recording) == "finished"
    assert any((services.settings.recordings_dir / f"visit-{held}").iterdir())

    clock.moment = now + timedelta(minutes=1)
    page = await open_page(browser, web, f"/officer/playback?visit_id={held}", account="admin_a")
    await expect(page.locator("#hold-box")).to_contain_text("On legal hold")
    await expect(page.locator("#hold-history")).to_contain_text("Held by Admin A on")
    await expect(page.locator("#hold-history")).to_contain_text("Subpoena 2027-114")
    await check_page(page, "officer-playback-legal-hold")
