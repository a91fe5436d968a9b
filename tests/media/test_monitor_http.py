"""An officer watches a live call over HTTP offer/answer and stops; a privileged one is refused."""

from __future__ import annotations

from tests.conftest import AiohttpClient
from tests.factories import ApiUser, World, add_visit
from tests.media.visit_media_support import MONITOR_SECTIONS, audits, join
from vvserver.app import create_app
from vvserver.app_keys import VISIT_MEDIA
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.domain.services import Services
from vvserver.settings import Settings


async def test_officer_monitors_over_http_and_privileged_visits_are_refused(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    services: Services,
    world: World,
    clip: Clip,
) -> None:
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    media = client.app[VISIT_MEDIA]
    control = await add_visit(services, world, ends_in=30.0)
    privileged = await add_visit(
        services, world, ends_in=30.0, kiosk="a2-1", person="pa2", privileged=True
    )
    officer = await ApiUser.sign_in(client, world.emails["officer_a"])
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    watcher = TestPeer("officer", clip, sections=MONITOR_SECTIONS)
    refused = TestPeer("officer-refused", clip, sections=MONITOR_SECTIONS)
    try:
        await join(media, control, "visitor", visitor)
        await join(media, control, "kiosk", kiosk)
        resp = await officer.post(
            f"/api/visits/{control}/monitor", json={"sdp": await watcher.create_offer()}
        )
        assert resp.status == 200, await resp.text()
        await watcher.accept_answer((await resp.json())["sdp"])
        await watcher.received_media("video", 1).wait_for_keyframes(1, within=5)
        resp = await officer.post(
            f"/api/visits/{privileged}/monitor", json={"sdp": await refused.create_offer()}
        )
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "privileged_visit"
        assert (await officer.delete(f"/api/visits/{control}/monitor")).status == 204
    finally:
        for peer in (visitor, kiosk, watcher, refused):
            await peer.close()
    actions = [(a[1], a[2]) for a in await audits(services, control)]
    assert ("visit.monitor.start", "success") in actions
    assert ("visit.monitor.stop", "success") in actions
    refusals = [(a[1], a[2]) for a in await audits(services, privileged)]
    assert refusals == [("visit.monitor.start", "failure")]
