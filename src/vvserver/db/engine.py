"""Engine and transactions.

Two kinds of transaction:

* ``read()``: a plain deferred transaction (many at once on SQLite WAL).
* ``write()``: serialised. On SQLite an in-process lock plus ``BEGIN IMMEDIATE`` takes the write
  lock up front, so WAL never answers SQLITE_BUSY half-way through a booking (and a second process,
  e.g. ``vvserver migrate``, waits on busy_timeout instead of failing). On PostgreSQL writers lock
  the rows they decide on (``FOR UPDATE``) and the audit chain takes an advisory lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_

logger = logging.getLogger(__name__)

_WRITE_OPTION = "vv_write"


class Database:
    """Owns the engine. ``close()`` is safe to call twice."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = _create_engine(url)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._closed = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A serialised write transaction; commits on success, rolls back on any exception."""
        if self._write_lock is not None:
            # The lock covers BEGIN IMMEDIATE .. COMMIT only; handing the connection back to
            # the pool (a reset round trip) happens after the next writer may start.
            async with self._write_sessions() as session:  # noqa: SIM117 (order matters)
                async with self._write_lock, session.begin():
                    yield session
        else:
            async with self._write_sessions() as session, session.begin():
                yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, OperationalError) as exc:
            logger.warning("database ping failed: %s", exc)
            return False
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.engine.dispose()


def _create_engine(url: str) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    # Every transaction here is ended by its context manager (commit or rollback) before the
    # connection goes back to the pool, so the pool's own reset round trip is not needed.
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE can be issued.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        # One round trip to the driver thread (exec_driver_sql would take three): this runs
        # inside every write's critical section.
        driver = conn.connection.driver_connection
        assert driver is not None
        await_(driver.execute_fetchall("BEGIN IMMEDIATE" if immediate else "BEGIN"))

    return engine
