"""Shared helpers of the VisitMedia tests: staff principals, polling, audit and recording
look-ups."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from tests.factories import World
from vvserver.client.peer import PeerSection, TestPeer
from vvserver.db.models import AuditEntry, Recording, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.services import Services
from vvserver.media.room_events import Role
from vvserver.visits_live import VisitMedia

MONITOR_SECTIONS = (
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
    PeerSection("audio", "recvonly"),
    PeerSection("video", "recvonly"),
)


def staff(world: World, key: str) -> Principal:
    role, facility = {
        "officer_a": ("officer", world.facility_a),
        "officer_b": ("officer", world.facility_b),
        "agency_admin": ("agency_admin", None),
        "admin_c": ("facility_admin", world.facility_c),
    }[key]
    agency = world.other_agency_id if key == "admin_c" else world.agency_id
    return Principal(
        role=role,  # type: ignore[arg-type]
        account_id=world.accounts[key],
        agency_id=agency,
        facility_id=facility,
    )


async def get_visit(services: Services, visit_id: int) -> Visit:
    async with services.read() as s:
        visit = await s.get(Visit, visit_id)
        assert visit is not None
        return visit


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def visit_is(services: Services, visit_id: int, state: str) -> None:
    async def check() -> bool:
        return (await get_visit(services, visit_id)).state == state

    await eventually(check)


async def audits(
    services: Services, visit_id: int
) -> list[tuple[str, str, str, dict[str, object]]]:
    async with services.read() as s:
        entries = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"visit:{visit_id}")
            .order_by(AuditEntry.seq)
        )
        return [(e.actor, e.action, e.outcome, e.details) for e in entries]


async def recordings_of(services: Services, visit_id: int) -> list[Recording]:
    async with services.read() as s:
        rows = await s.scalars(select(Recording).where(Recording.visit_id == visit_id))
        return list(rows)


async def join(media: VisitMedia, visit_id: int, role: Role, peer: TestPeer) -> None:
    await peer.connect(lambda offer: media.join(visit_id, role, offer))
    await peer.wait_connected(within=10)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_files_match_disk(recording: Recording, root: Path) -> None:
    directory = root / recording.directory
    for entry in recording.files:
        path = directory / entry["name"]
        assert entry["sha256"] == sha256_of(path), entry
        assert entry["size"] == path.stat().st_size
    listed = json.loads((directory / "manifest.json").read_text())["files"]
    media_entries = [f for f in recording.files if f["kind"] == "media"]
    assert [f["name"] for f in listed] == [f["name"] for f in media_entries]
