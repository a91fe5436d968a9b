"""`serve` upgrades the database only when it is behind, and then with Alembic as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from vvserver.db import migrate
from vvserver.db.engine import Database


def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'vv.sqlite3'}"


def test_the_heads_read_from_the_files_are_alembics() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert migrate.head_revisions() == frozenset(script.get_heads())


def test_heads_of_branches_and_files_that_say_too_little(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision = "a"\n')
    (tmp_path / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    assert migrate.head_revisions(tmp_path) == frozenset({"b", "c"})
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert migrate.head_revisions(tmp_path) == frozenset({"d"})
    (tmp_path / "e.py").write_text('revision = make_id()\ndown_revision = "d"\n')
    assert migrate.head_revisions(tmp_path) is None
    (tmp_path / "e.py").write_text('revision = "e"\n')
    assert migrate.head_revisions(tmp_path) is None


async def test_a_database_at_head_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite(tmp_path)
    assert await migrate.database_revisions(url) is None
    assert not await migrate.at_head(url)
    await migrate.upgrade(url)
    assert await migrate.at_head(url)

    def no_alembic(url: str) -> None:
        raise AssertionError("Alembic ran for a database already at head")

    monkeypatch.setattr(migrate, "upgrade_sync", no_alembic)
    await migrate.upgrade(url)


async def test_a_database_behind_is_upgraded(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    await migrate.upgrade(url)
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "-1")
    assert not await migrate.at_head(url)
    await migrate.upgrade(url)
    assert await migrate.at_head(url)
    db = Database(url)
    try:
        async with db.read() as session:
            await session.execute(text("SELECT language FROM accounts"))  # 0010's column
    finally:
        await db.close()


async def test_both_engines_report_their_revision(db_url: str) -> None:
    assert await migrate.at_head(db_url)
    db = Database(db_url)
    try:
        async with db.write() as session:
            await session.execute(text("DROP TABLE alembic_version"))
    finally:
        await db.close()
    assert await migrate.database_revisions(db_url) is None
    assert not await migrate.at_head(db_url)
