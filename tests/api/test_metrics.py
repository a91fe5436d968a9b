"""Prometheus scrapes ``/metrics``: what a call moves shows up, labelled with the node and the
worker; a draining server says so there and on ``/healthz`` and opens no new call. Only
loopback (with no proxy in between) or the configured bearer token may read the figures."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import Middleware

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import World, add_visit, build_world
from tests.media.visit_media_support import eventually, join, visit_is
from vvserver.app import build_services, create_app
from vvserver.app_keys import VISIT_MEDIA
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.domain.errors import Conflict
from vvserver.domain.services import Services
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]
TOKEN = "scrape-token-0123456789abcdef"
FAR_AWAY = "203.0.113.7"


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    set_ice_host_addresses(["127.0.0.1"])
    yield
    set_ice_host_addresses(None)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip()


def sample(text: str, name: str, node: str = "gate-a", worker: str = "0") -> float:
    """The value of one series in the text format."""
    match = re.search(
        rf'^{name}{{node="{node}",worker="{worker}"}} (\S+)$', text, flags=re.MULTILINE
    )
    assert match is not None, f"{name} not in:\n{text}"
    return float(match.group(1))


async def scrape(client: Client) -> str:
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await resp.text()


@pytest.fixture
async def node(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services
) -> tuple[Client, Services]:
    settings = settings.model_copy(update={"node_name": "gate-a"})
    services.settings = settings
    return await aiohttp_client(create_app(settings, services=services, workers=[])), services


@pytest.mark.slow
async def test_a_call_shows_in_the_metrics_and_a_drain_is_reported(
    node: tuple[Client, Services], world: World, clip: Clip
) -> None:
    client, services = node
    media = client.app[VISIT_MEDIA]
    idle = await scrape(client)
    assert sample(idle, "vv_calls") == 0
    assert sample(idle, "vv_draining") == 0
    assert "# TYPE vv_forwarded_packets_total counter" in idle

    visit_id = await add_visit(services, world, ends_in=4.0)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await join(media, visit_id, "visitor", visitor)
        await join(media, visit_id, "kiosk", kiosk)
        await visit_is(services, visit_id, "live")

        async def media_forwarded() -> bool:
            return sample(await scrape(client), "vv_forwarded_packets_total") > 50

        await eventually(media_forwarded)
        during = await scrape(client)
        assert sample(during, "vv_calls") == 1
        assert sample(during, "vv_participants") == 2
        assert sample(during, "vv_forwarded_bytes_total") > 10_000
        await visit_is(services, visit_id, "completed")
        await media.wait_settled(visit_id)
    finally:
        await visitor.close()
        await kiosk.close()
    after = await scrape(client)
    assert sample(after, "vv_calls") == 0
    assert sample(after, "vv_recordings_written_total") == 1
    # Counters keep what the closed call forwarded.
    assert sample(after, "vv_forwarded_packets_total") >= sample(
        during, "vv_forwarded_packets_total"
    )

    # SIGTERM's first step: the server drains. No new call opens here; health and metrics say so.
    media.start_draining()
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "draining"
    assert sample(await scrape(client), "vv_draining") == 1
    other = await add_visit(services, world, ends_in=60.0)
    with pytest.raises(Conflict) as refused:
        await media.open_room(other)
    assert refused.value.code == "node_draining"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def from_far_away(remote: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request.clone(remote=remote))

    return middleware


async def metrics_app(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    sqlite_url: str,
    remote: str | None,
    **extra: object,
) -> Client:
    settings = make_settings(tmp_path / "data", sqlite_url, **extra)
    services = build_services(settings, passwords=fast_passwords())
    await build_world(services)
    app = create_app(settings, services=services, workers=[])
    if remote is not None:
        app.middlewares.insert(0, from_far_away(remote))  # the peer address a request came from
    return await aiohttp_client(app)


async def test_metrics_answer_loopback_but_not_a_proxied_client_without_a_token(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    client = await metrics_app(aiohttp_client, tmp_path, sqlite_url, remote=None)
    assert (await client.get("/metrics")).status == 200
    # A reverse proxy on the same host connects from loopback, for a client elsewhere.
    resp = await client.get("/metrics", headers={"X-Forwarded-For": FAR_AWAY})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "metrics_loopback_only"


async def test_from_elsewhere_metrics_need_the_bearer_token(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    client = await metrics_app(
        aiohttp_client, tmp_path, sqlite_url, remote=FAR_AWAY, metrics_token=TOKEN
    )
    resp = await client.get("/metrics")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "metrics_token_required"
    resp = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "metrics_token_invalid"
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    assert "vv_calls{" in await resp.text()
    assert (await client.get("/healthz")).status == 200  # health stays public


async def test_without_a_token_nobody_elsewhere_reads_the_metrics(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    client = await metrics_app(aiohttp_client, tmp_path, sqlite_url, remote=FAR_AWAY)
    resp = await client.get("/metrics", headers={"Authorization": "Bearer anything-at-all-here"})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "metrics_loopback_only"
