"""A visitor waits in the call; staff cancel the visit: the call is hung up at once."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import AiohttpClient
from tests.factories import World, add_visit
from tests.media.visit_media_support import eventually, get_visit, join, recordings_of, staff
from vvserver.app import create_app
from vvserver.app_keys import VISIT_MEDIA
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.domain.booking.cancellation import cancel_visit
from vvserver.domain.services import Services
from vvserver.settings import Settings


async def test_a_cancelled_visit_hangs_up_the_waiting_visitor(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    services: Services,
    world: World,
    clip: Clip,
) -> None:
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    media = client.app[VISIT_MEDIA]
    visit_id = await add_visit(services, world, ends_in=120.0, started=timedelta(seconds=-60))
    visitor = TestPeer("visitor", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        assert media.rooms.get(visit_id) is not None
        await cancel_visit(
            services, staff(world, "officer_a"), visit_id, "unit lockdown", audit=None
        )

        async def hung_up() -> bool:
            return media.rooms.get(visit_id) is None and visitor.pc.connectionState in (
                "closed",
                "failed",
            )

        await eventually(hung_up)
    finally:
        await visitor.close()
    visit = await get_visit(services, visit_id)
    assert (visit.state, visit.end_reason) == ("cancelled", "unit lockdown")
    [recording] = await recordings_of(services, visit_id)
    assert recording.state == "finished"
