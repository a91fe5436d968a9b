"""Cluster fixtures: real Redis (a key prefix of each test's own, removed afterwards), real
PostgreSQL (a database of each test's own), and for the stories with real nodes: the nodes
(``cluster``, stopped and their logs printed at the end), the sample clip and loopback-only
ICE (``loopback_ice``: ``pytestmark = pytest.mark.usefixtures("loopback_ice")``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.cluster.local_cluster import REDIS_URL, LocalCluster
from tests.conftest import IN_CI, _drop_postgres_database, _postgres_database
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.cluster.link import RedisLink
from vvserver.db.migrate import upgrade
from vvserver.media.aiortc_hooks import set_ice_host_addresses


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix no other test uses; every key under it is deleted at the end."""
    client: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"vvtest-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    created = await _postgres_database()
    assert created is not None
    name, url = created
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
async def links(redis_prefix: str) -> AsyncIterator[list[RedisLink]]:
    """Links of three nodes (not started: a test registers its handlers first)."""
    made = [RedisLink(REDIS_URL, redis_prefix, f"node{i}/0") for i in range(3)]
    yield made
    for link in made:
        await link.close()


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """The test's own peers offer 127.0.0.1 only (the nodes have their own addresses)."""
    set_ice_host_addresses(["127.0.0.1"])
    yield
    set_ice_host_addresses(None)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip()


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, redis_prefix: str) -> AsyncIterator[LocalCluster]:
    """Real nodes on loopback (started by the test): stopped at the end, their logs printed."""
    nodes = LocalCluster(tmp_path / "nodes", pg_url, redis_prefix)
    try:
        yield nodes
    finally:
        await nodes.stop()
        print(nodes.logs())
