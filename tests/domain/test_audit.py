"""Every login and staff action lands in a hash chain that `vvserver audit verify` checks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select, update

from tests.conftest import fast_passwords, make_settings
from tests.factories import PASSWORD, World
from vvserver.app import build_services
from vvserver.db.models import AuditEntry
from vvserver.domain.audit.chain import AuditRecord, verify_chain
from vvserver.domain.services import Services
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]


def run_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VV_SECRET_KEY": settings.secret_key or ""}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vvserver",
            "audit",
            "verify",
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            settings.resolved_database_url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_logins_are_audited_and_the_chain_verifies(
    client: Client, world: World, settings: Settings, services: Services
) -> None:
    email = world.emails["officer_a"]
    assert (await client.post("/api/auth/login", json={"email": email, "password": "x"})).status
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200
    async with services.read() as s:
        entries = (await s.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars().all()
    logins = [(e.action, e.outcome) for e in entries if e.action == "auth.login"]
    assert logins == [("auth.login", "failure"), ("auth.login", "success")]
    assert all(e.request_id for e in entries if e.action == "auth.login")
    result = run_verify(settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


async def test_an_edited_row_is_reported_as_the_first_broken_link(
    world: World, settings: Settings, services: Services
) -> None:
    for n in range(5):
        await services.audit_now(AuditRecord(f"officer:{n}", "test.action", "success"))
    async with services.write() as s:
        await s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="failure"))
    result = run_verify(settings)
    assert result.returncode == 1
    assert "entry 3" in result.stdout


async def test_deleting_the_newest_rows_is_detected_by_the_anchor(
    world: World, settings: Settings, services: Services
) -> None:
    for n in range(5):
        await services.audit_now(AuditRecord(f"officer:{n}", "test.action", "success"))
    async with services.write() as s:
        top = await s.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
        assert top is not None
        await s.execute(delete(AuditEntry).where(AuditEntry.seq > top - 2))
    result = run_verify(settings)
    assert result.returncode == 1
    assert "deleted" in result.stdout


async def test_concurrent_writers_never_fork_the_chain(db_url: str, tmp_path: Path) -> None:
    services = build_services(make_settings(tmp_path, db_url), passwords=fast_passwords())
    try:

        async def writer(n: int) -> None:
            for i in range(5):
                await services.audit_now(AuditRecord(f"officer:{n}", f"test.{i}", "success"))

        await asyncio.gather(*(writer(n) for n in range(20)))
        async with services.read() as s:
            result = await verify_chain(s, services.audit.anchor)
        assert result.ok, result
        assert result.count == 100
    finally:
        await services.db.close()
