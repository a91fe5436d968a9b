"""Shared fixtures: a migrated database (SQLite or PostgreSQL), services, an HTTP client."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.factories import World, build_world
from tests.store_helpers import ManualClock
from vvserver.app import build_services, create_app
from vvserver.db.migrate import upgrade
from vvserver.domain.accounts.secrets import PasswordHashing
from vvserver.domain.services import Services
from vvserver.settings import Settings

PG_ADMIN_DSN = os.environ.get("VV_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


async def _postgres_database() -> tuple[str, str] | None:
    """Create a fresh database for this test; None when PostgreSQL is not reachable."""
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
    name = f"vvtest_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijkl"


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        public_url="http://127.0.0.1:8080",
        rate_login_per_min=10_000,
        rate_signup_per_min=10_000,
        rate_reset_per_min=10_000,
        **extra,  # type: ignore[arg-type]
    )


def fast_passwords() -> PasswordHashing:
    return PasswordHashing(time_cost=1, memory_cost=1024)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database; store tests use this to run on both engines."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vv.sqlite3'}"
        await upgrade(url)
        yield url
        return
    created = await _postgres_database()
    assert created is not None
    name, url = created
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vv.sqlite3'}"
    await upgrade(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path / "data", sqlite_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = build_services(settings, passwords=fast_passwords())
    yield svc
    await svc.db.close()


@pytest.fixture
async def world(services: Services) -> World:
    """A demo-like agency: one facility with two units, kiosks, people, staff and a visitor."""
    return await build_world(services)


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services
) -> TestClient[web.Request, web.Application]:
    app = create_app(settings, services=services, workers=[])
    return await aiohttp_client(app)


@pytest.fixture
def clock(services: Services) -> ManualClock:
    """The server clock frozen at Monday 4 January 2027, 07:00 in New York (facility A)."""
    frozen = ManualClock(datetime(2027, 1, 4, 12, 0, tzinfo=UTC))
    services.clock = frozen
    return frozen
