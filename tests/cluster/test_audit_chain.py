"""Two nodes append to one audit chain at once on PostgreSQL: the chain stays one, and
`vvserver audit verify` holds on every node, and on a machine that never appended, because
the chain's signed head lives in the database that all nodes share (not only in each node's
data directory). Deleting the newest rows, whichever node wrote them, is caught everywhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from tests.conftest import fast_passwords, make_settings
from vvserver.app import build_services
from vvserver.db.models import AuditEntry
from vvserver.settings import Settings

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
PER_NODE = 40


def verify_on(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`vvserver audit verify` as an operator runs it on one machine."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "vvserver", "audit", "verify"),
            *("--data-dir", str(settings.data_dir)),
            *("--database-url", settings.resolved_database_url),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "VV_SECRET_KEY": settings.secret_key or ""},
        timeout=60,
        check=False,
    )


async def appending(data_dir: Path, pg_url: str, node: str, count: int, start: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.cluster.audit_writer"),
        *(str(data_dir), pg_url, node, str(count), str(start)),
        cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    assert process.returncode == 0, errors.decode()[-3000:]


async def test_two_nodes_appending_at_once_keep_one_chain_that_verifies_everywhere(
    pg_url: str, tmp_path: Path
) -> None:
    nodes = [make_settings(tmp_path / f"node{i}", pg_url) for i in range(2)]
    elsewhere = make_settings(tmp_path / "auditor", pg_url)  # never appended anything
    start = tmp_path / "start"

    writers = [
        asyncio.create_task(appending(s.data_dir, pg_url, f"node{i}", PER_NODE, start))
        for i, s in enumerate(nodes)
    ]
    await asyncio.sleep(1.0)  # both processes up and waiting
    start.touch()
    await asyncio.gather(*writers)

    services = build_services(elsewhere, passwords=fast_passwords())
    try:
        async with services.read() as session:
            actors = dict(
                (
                    await session.execute(
                        select(AuditEntry.actor, func.count()).group_by(AuditEntry.actor)
                    )
                ).all()
            )
        assert actors == {"officer:node0": PER_NODE, "officer:node1": PER_NODE}
        for settings in (*nodes, elsewhere):
            verified = verify_on(settings)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert f"{2 * PER_NODE} entries" in verified.stdout

        # node1 goes on alone; then someone deletes the newest rows (node1's). node0's own
        # anchor file is older than those rows: the shared anchor still catches it there.
        await appending(nodes[1].data_dir, pg_url, "node1", 3, start)
        async with services.write() as session:
            await session.execute(delete(AuditEntry).where(AuditEntry.seq > 2 * PER_NODE + 1))
    finally:
        await services.db.close()
    for settings in (nodes[0], elsewhere):
        verified = verify_on(settings)
        assert verified.returncode == 1, verified.stdout
        assert "2 newest entries deleted (anchor)" in verified.stdout
