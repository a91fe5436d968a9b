"""Joining early: the waiting room, in real pages, on the server's real clock.

A visitor (in another time zone than the jail) opens the visit about two minutes before its
slot and presses Join: the page keeps them in the waiting room (their own camera, "PA1 will
join at 4:57 PM (your time)", a countdown) while the call is set up behind it. The kiosk joins
by itself a minute before and waits the same way. The officer's tile and the visitor's list
say "Starts in ..." meanwhile. Nothing is recorded and no connected or lost time counts
before the slot starts; at the start both sides see each other within moments, the timer
shows the slot's length, and the recording begins at the start.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, new_page, open_page
from tests.browser.test_visitor_call import officer_terminates
from tests.factories import add_visit
from vvserver.app_keys import VISIT_MEDIA
from vvserver.db.models import Recording, Visit
from vvserver.media.packet_log import LOG_SUFFIX

EARLY_S = 135  # the visitor opens the visit this long before its slot
SLOT_S = 120
VISITOR_ZONE = "America/Los_Angeles"  # the family lives far from the jail
FACILITY_ZONE = "America/New_York"
# Both sides see each other's video this soon after the slot starts. The relay's part (gate
# open, keyframe asked and forwarded) is timed in tests/media/test_waiting_room.py (within
# 1 s); here two Chromiums encode and decode on a shared 2-core machine: 1.8-2.0 s measured at
# a load average of ~8, 10 s at ~19. The figure is printed.
TWO_WAY_WITHIN_S = 15.0


# When the remote video first has a picture (its size becomes known), by the page's clock.
WATCH_FIRST_VIDEO = """() => {
  const video = document.getElementById('remote-video');
  window.firstVideoAt = null;
  const seen = () => {
    if (window.firstVideoAt === null && video.videoWidth > 0) window.firstVideoAt = Date.now();
  };
  video.addEventListener('resize', seen);
  video.addEventListener('loadedmetadata', seen);
  seen();
}"""


def short_time(moment: datetime, zone: str) -> re.Pattern[str]:
    """ "4:57 PM" as Chromium writes it in en-US (any space before PM)."""
    local = moment.astimezone(ZoneInfo(zone))
    hour = local.hour % 12 or 12
    return re.compile(rf"{hour}:{local.minute:02d}\s{'AM' if local.hour < 12 else 'PM'}")


async def has_video(page: Page) -> bool:
    width = await page.evaluate("() => document.getElementById('remote-video').videoWidth")
    return bool(width)


async def nothing_counted_yet(web: WebServer, visit_id: int) -> Visit:
    async with web.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
    assert visit.state == "ready", visit.state
    figures = (visit.visitor_connected_s, visit.kiosk_connected_s)
    assert figures == (0, 0), figures
    assert (visit.visitor_lost_s, visit.kiosk_lost_s) == (0, 0)
    return visit


async def nothing_recorded_yet(web: WebServer, visit_id: int) -> None:
    async with web.services.read() as session:
        recording = await session.scalar(select(Recording).where(Recording.visit_id == visit_id))
    assert recording is not None  # the room is open, its recording row waits for media
    directory = web.settings.recordings_dir / recording.directory
    assert not list(directory.glob(f"*{LOG_SUFFIX}")), "recorded in the waiting room"


async def wait_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def test_a_visitor_who_joins_two_minutes_early_waits_and_nothing_counts_before_the_start(
    web: WebServer, browser: Browser
) -> None:
    assert web.app is not None
    visit_id = await add_visit(
        web.services,
        web.world,
        started=-timedelta(seconds=EARLY_S),
        ends_in=EARLY_S + SLOT_S,
    )
    async with web.services.read() as session:
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        start_at, end_at = visit.start_at, visit.end_at

    # The visitor's list and the officer's tile say the same thing: it starts in 2 minutes.
    visitor = await open_page(
        browser, web, "/visitor/visits", account="visitor", timezone=VISITOR_ZONE
    )
    await expect(visitor.locator("#coming > li").first).to_contain_text(
        re.compile(r"Starts in [12]:\d\d")
    )
    officer = await open_page(browser, web, "/officer/", account="officer_a")
    tile = officer.get_by_role("article", name="PA1 Doe with Visitor")
    await expect(tile).to_contain_text(re.compile(r"Starts in [12]:\d\d ·"))

    await visitor.get_by_role("link", name="Join now").click()
    await expect(visitor.get_by_role("heading", name="Waiting room")).to_be_visible()
    await expect(visitor.locator("#waiting-who")).to_have_text(
        re.compile(
            rf"^PA1 will join at {short_time(start_at, VISITOR_ZONE).pattern} \(your time\)\.$"
        )
    )
    await expect(visitor.locator("#visit-countdown")).to_have_text(
        re.compile(r"^Starts in [12]:\d\d$")
    )
    # The camera preview runs before they press Join (as a person waits to see themselves).
    await visitor.wait_for_function(
        "() => document.getElementById('preview').videoWidth > 0", timeout=15_000
    )
    await visitor.get_by_role("button", name="Join the visit").click()
    # Connected behind the scenes, but still in the waiting room: no "Connected." over black.
    await expect(visitor.locator("#join-status")).to_have_text(
        "You are ready. The call opens by itself when the visit starts.", timeout=20_000
    )
    await expect(visitor.locator("#call")).to_be_hidden()
    await expect(visitor.locator("#preview")).to_be_visible()
    await check_page(visitor, "waiting-room-visitor")

    # The kiosk comes up a minute before the slot and waits too: its start time, a countdown.
    kiosk = await new_page(browser, web, timezone=FACILITY_ZONE)
    await kiosk.goto(f"/kiosk/#token={web.world.kiosk_tokens['a1-1']}")
    await expect(kiosk.locator("#call-wait")).to_be_visible(timeout=(EARLY_S + 10) * 1000)
    await expect(kiosk.locator("#call-starts-at")).to_have_text(
        re.compile(rf"^The visit starts at {short_time(start_at, FACILITY_ZONE).pattern}\.$")
    )
    await expect(kiosk.locator("#call-countdown")).to_have_text(re.compile(r"^Starts in 0:\d\d$"))
    await expect(kiosk.locator("#call-state")).to_have_text(
        "Ready. The call opens by itself when the visit starts.", timeout=20_000
    )
    await check_page(kiosk, "waiting-room-kiosk")

    # Both sides are connected in the waiting room: the room passes nothing, records nothing,
    # counts nothing (the ledger has been written every second since they joined).
    room = web.app[VISIT_MEDIA].rooms.get(visit_id)
    assert room is not None
    assert not room.gate.is_open
    await asyncio.sleep(2.0)
    assert datetime.now(UTC) < start_at - timedelta(seconds=3), "too slow to test before start"
    for role in ("visitor", "kiosk"):
        assert room.participant(role) is not None, f"{role} not in the waiting room"
    assert not await has_video(visitor)
    assert not await has_video(kiosk)
    await nothing_counted_yet(web, visit_id)
    await nothing_recorded_yet(web, visit_id)
    await expect(visitor.locator("#call")).to_be_hidden()
    # The time-left timers stand at the slot's length until the start (not 4:10 for 2 minutes).
    await expect(visitor.locator("#time-left")).to_have_text("2:00")
    await expect(kiosk.locator("#time-left")).to_have_text("2:00")

    # The slot starts: both sides see each other at once, the timer shows the slot's length.
    for page in (visitor, kiosk):
        await page.evaluate(WATCH_FIRST_VIDEO)
    await wait_until(start_at - timedelta(seconds=1))
    await expect(visitor.locator("#call")).to_be_visible(timeout=5_000)
    await expect(visitor.locator("#time-left")).to_have_text(re.compile(r"^(2:00|1:5\d)$"))
    shown = []
    for page in (visitor, kiosk):
        await page.wait_for_function(
            "() => window.firstVideoAt !== null", timeout=(TWO_WAY_WITHIN_S + 15) * 1000
        )
        at_ms = await page.evaluate("() => window.firstVideoAt")
        shown.append(datetime.fromtimestamp(at_ms / 1000, UTC))
    two_way_after = (max(shown) - start_at).total_seconds()
    print(f"two-way video {two_way_after:.2f} s after the slot start")
    assert two_way_after <= TWO_WAY_WITHIN_S
    await expect(visitor.locator("#conn-status")).to_have_text("Connected.")
    await expect(kiosk.locator("#call-wait")).to_be_hidden()
    await expect(kiosk.locator("#time-left")).to_have_text(re.compile(r"^1:[0-5]\d$"))
    await expect(tile).to_contain_text("In progress ·", timeout=10_000)
    await check_page(visitor, "waiting-room-then-call")

    await asyncio.sleep(4.0)
    await officer_terminates(web, visit_id, "testing the waiting room")
    ended_at = datetime.now(UTC)
    await expect(visitor.get_by_role("heading", name="Visit summary")).to_be_visible()
    await web.app[VISIT_MEDIA].wait_settled(visit_id)

    # Connected time and the recording run from the slot's start, not from the early join.
    async with web.services.read() as session:
        done = await session.get(Visit, visit_id)
        recording = await session.scalar(select(Recording).where(Recording.visit_id == visit_id))
    assert done is not None
    assert recording is not None
    in_call = (ended_at - start_at).total_seconds()
    for connected in (done.visitor_connected_s, done.kiosk_connected_s):
        assert in_call - 3.0 <= connected <= in_call + 0.5, (connected, in_call)
    assert done.visitor_lost_s + done.kiosk_lost_s <= 1.0
    assert recording.state == "finished"
    media = [entry for entry in recording.files if entry["kind"] == "media"]
    assert {entry["participant"] for entry in media} == {"visitor", "kiosk"}
    for entry in media:
        assert datetime.fromisoformat(entry["started_at"]) >= start_at, entry
        assert entry["duration_s"] <= in_call + 0.5, (entry, in_call)
    assert end_at > ended_at  # the slot was not over: the figures above are the call's
