"""One node's audited work, run as a process of its own by ``test_audit_chain.py``:

    python -m tests.cluster.audit_writer DATA_DIR DATABASE_URL NODE COUNT START_FILE

It waits for START_FILE (so that every writer starts at once), then appends COUNT audit
entries through the server's own ``Services.audit_now``, each in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import fast_passwords, make_settings
from vvserver.app import build_services
from vvserver.domain.audit.chain import AuditRecord


async def append(data_dir: Path, database_url: str, node: str, count: int, start: Path) -> None:
    services = build_services(make_settings(data_dir, database_url), passwords=fast_passwords())
    try:
        while not await asyncio.to_thread(start.exists):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.01)
        for number in range(count):
            await services.audit_now(
                AuditRecord(f"officer:{node}", "test.cluster_append", "success", target=str(number))
            )
    finally:
        await services.db.close()


if __name__ == "__main__":
    data_dir, database_url, node, count, start = sys.argv[1:6]
    asyncio.run(append(Path(data_dir), database_url, node, int(count), Path(start)))
