"""Cluster fixtures: real Redis (a key prefix of each test's own, removed afterwards) and real
PostgreSQL (a database of each test's own)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.conftest import IN_CI, _drop_postgres_database, _postgres_database
from vvserver.cluster.link import RedisLink
from vvserver.db.migrate import upgrade

REDIS_URL = os.environ.get("VV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
