"""Apply Alembic migrations programmatically (``vvserver migrate`` and at ``serve``).

Alembic is imported only when there is something to do: ``serve`` first asks the database for
its revision and compares it with the heads of ``migrations/versions`` (read from the files'
``revision``/``down_revision`` lines, no Alembic needed). A database already at the latest
schema, the usual case at a restart, is left alone, and the serving process does not carry
Alembic's modules and script scan (about 11 MB of resident memory) for the rest of its life.
Anything else (no version table, an older or unknown revision, a file the quick reading does
not understand) goes to Alembic's upgrade. ``serve`` runs that upgrade in a child process
(``vvserver prepare``), so a brand-new data directory's server does not carry Alembic either.
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from vvserver.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"

_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_sync(url: str) -> None:
    """Upgrade to head. Runs its own event loop: call from a thread when one is running."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def head_revisions(versions_dir: Path = VERSIONS_DIR) -> frozenset[str] | None:
    """The revisions no other revision follows, from the version files' own lines; None when a
    file does not say plainly what it is (then only Alembic can tell)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in versions_dir.glob("*.py"):
        found: dict[str, object] = {}
        for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
            if name in found:
                return None
            try:
                found[name] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return None
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or "down_revision" not in found:
            return None
        revisions.add(revision)
        if isinstance(down, str):
            followed.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            followed.update(down)
        elif down is not None:
            return None
    heads = frozenset(revisions - followed)
    return heads or None


async def database_revisions(url: str) -> frozenset[str] | None:
    """The revisions in the database's ``alembic_version`` table; None without the table."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(str(row) for row in result.scalars())
    except (DBAPIError, OSError):
        return None  # Alembic's upgrade creates the table (or reports what is wrong)
    finally:
        await db.close()


async def at_head(url: str) -> bool:
    heads = head_revisions()
    return heads is not None and await database_revisions(url) == heads


async def upgrade(url: str) -> None:
    """Upgrade to head; nothing (not even importing Alembic) when the database is there."""
    if await at_head(url):
        return
    await asyncio.to_thread(upgrade_sync, url)
