"""Prepared Core statements run with the fewest driver round trips (the scheduling hot paths).

SQLAlchemy's asyncio adaptation of aiosqlite crosses to the driver thread four times per
statement (cursor, execute, fetchall, close), about 1 ms a statement under load; aiosqlite's own
``execute_fetchall`` does the same in one crossing. A ``Prepared`` statement is built once with
named ``bindparam``s and compiled once per dialect. On SQLite it runs directly on the driver
connection of the session's current transaction (same connection, same transaction), through
SQLAlchemy's own bind and result processors, with a fast path for ``UTCDateTime`` columns. On any
other database it is a plain ``session.execute``.

Statements run this way bypass the ORM (no autoflush): flush pending ORM changes first when they
matter.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import CompoundSelect, Select

from vvserver.db.types import UTCDateTime

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]
_DRIVER_KEY = "vv_lean_driver"
_Processor = Callable[[Any], Any]
Statement = Select[*tuple[Any, ...]] | CompoundSelect[Any] | UpdateBase


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, _Processor | None, Any], ...]  # name, processor, literal value
    utc_columns: tuple[int, ...]  # UTCDateTime columns: SQLite text, naive UTC
    results: tuple[tuple[int, _Processor], ...]  # other columns with a result processor

    def parameters(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, process, literal in self.binds:
            value = params.get(name, literal)
            values.append(process(value) if process is not None else value)
        return tuple(values)

    def convert(self, rows: Sequence[Any]) -> list[Row]:
        if not self.utc_columns and not self.results:
            return [tuple(row) for row in rows]
        # SQLAlchemy writes SQLite DATETIME as ``YYYY-MM-DD HH:MM:SS.ffffff``; the same instants
        # recur (slot starts), so each distinct text is parsed once per call.
        parsed: dict[str, datetime] = {}
        converted = []
        for row in rows:
            values = list(row)
            for index in self.utc_columns:
                text = values[index]
                if text is not None:
                    instant = parsed.get(text)
                    if instant is None:
                        instant = parsed[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
                    values[index] = instant
            for index, process in self.results:
                values[index] = process(values[index])
            converted.append(tuple(values))
        return converted


async def _driver(session: AsyncSession) -> Any:
    """The aiosqlite connection of the session's current transaction (begun if needed)."""
    transaction = session.get_transaction()
    cached = session.info.get(_DRIVER_KEY)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cached[1]
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    session.info[_DRIVER_KEY] = (session.get_transaction(), driver)
    return driver


class Prepared:
    """A Core select (or union) or an insert/update (optionally ``RETURNING``) with named bind
    parameters."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.returns_rows = len(statement.exported_columns) > 0
        self._sqlite: _Compiled | None = None

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string or compiled.positiontup is None:
            raise ValueError("Prepared statements cannot use expanding IN parameters")
        binds = tuple(
            (
                name,
                compiled.binds[name].type.bind_processor(dialect),
                compiled.binds[name].value,
            )
            for name in compiled.positiontup
        )
        utc_columns: list[int] = []
        results: list[tuple[int, _Processor]] = []
        for index, column in enumerate(self.statement.exported_columns):
            if isinstance(column.type, UTCDateTime):
                utc_columns.append(index)
                continue
            process = column.type.result_processor(dialect, None)
            if process is not None:
                results.append((index, process))
        return _Compiled(compiled.string, binds, tuple(utc_columns), tuple(results))

    async def rows(self, session: AsyncSession, **params: Any) -> list[Row]:
        """Run inside the session's transaction (beginning it if needed); all rows."""
        dialect = session.get_bind().dialect
        if dialect.name != "sqlite":
            result = await session.execute(self.statement, params)
            return [tuple(row) for row in result.all()] if self.returns_rows else []
        if self._sqlite is None:
            self._sqlite = self._compile(dialect)
        compiled = self._sqlite
        values = compiled.parameters(params)
        driver = await _driver(session)
        try:
            fetched = await driver.execute_fetchall(compiled.sql, values)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(compiled.sql, values, exc, sqlite3.Error) from exc
        return compiled.convert(list(fetched))

    async def first(self, session: AsyncSession, **params: Any) -> Row | None:
        found = await self.rows(session, **params)
        return found[0] if found else None
