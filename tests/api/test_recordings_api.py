"""An officer finds a recorded visit, plays both sides in sync with the flags, seeks with
HTTP Range and exports the evidence; every search, playback and export is audited.

Recordings are real: packet logs of the sample clip remuxed by the project's own pipeline.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import ApiUser, World, build_world, started_visit
from tests.recording_support import Segment, record_visit
from vvserver.api.routes_recordings import RangeNotSatisfiable, parse_range
from vvserver.app import build_services, create_app
from vvserver.db.models import AuditEntry, Facility, VisitFlag
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


@dataclass
class Recorded:
    client: Client
    services: Services
    world: World
    visit_id: int
    recording_id: int


@pytest.fixture
async def recorded(
    aiohttp_client: AiohttpClient, tmp_path: Path, db_url: str
) -> AsyncIterator[Recorded]:
    """A finished 40-minute-old visit at facility A with both sides recorded and one flag."""
    services = build_services(make_settings(tmp_path / "data", db_url), passwords=fast_passwords())
    try:
        world = await build_world(services)
        visit_id = await started_visit(services, world, started_ago=timedelta(minutes=40))
        recording_id = await record_visit(services, visit_id)
        async with services.write() as s:
            s.add(
                VisitFlag(
                    visit_id=visit_id,
                    facility_id=world.facility_a,
                    at=services.clock.now() - timedelta(minutes=39, seconds=59),
                    offset_s=1.0,
                    note="holds up a note",
                    created_by=world.accounts["officer_a"],
                )
            )
        client = await aiohttp_client(create_app(services.settings, services=services, workers=[]))
        yield Recorded(client, services, world, visit_id, recording_id)
    finally:
        await services.db.close()


async def audit_actions(services: Services) -> list[tuple[str, str, str | None]]:
    async with services.read() as s:
        rows = await s.scalars(
            select(AuditEntry).where(AuditEntry.action.like("recording.%")).order_by(AuditEntry.seq)
        )
        return [(a.action, a.outcome, a.target) for a in rows]


async def test_officer_finds_plays_and_seeks_a_recording(recorded: Recorded) -> None:
    r = recorded
    officer = await ApiUser.sign_in(r.client, r.world.emails["officer_a"])

    resp = await officer.get("/api/recordings", params={"person_id": r.world.persons["pa1"]})
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert page["total"] == 1
    [item] = page["items"]
    assert item["visit_id"] == r.visit_id
    assert item["recording_id"] == r.recording_id
    assert item["facility_id"] == r.world.facility_a
    assert item["person"]["id"] == r.world.persons["pa1"]
    assert item["person"]["booking_number"]
    assert item["visitor"]["id"] == r.world.accounts["visitor"]
    assert item["kiosk"]["id"] == r.world.kiosks["a1-1"]
    assert item["flags"] == 1
    # The kiosk side starts at 0 and the visitor side half a second later, 1 s each.
    assert 1.4 <= item["duration_s"] <= 1.7
    assert item["size_bytes"] > 10_000

    other_kiosk = await officer.get("/api/recordings", params={"kiosk_id": r.world.kiosks["a1-2"]})
    assert (await other_kiosk.json())["total"] == 0

    resp = await officer.get(f"/api/visits/{r.visit_id}/recording")
    assert resp.status == 200, await resp.text()
    playback = await resp.json()
    assert playback["recording_id"] == r.recording_id
    tracks = {t["participant"]: t for t in playback["tracks"]}
    assert set(tracks) == {"kiosk", "visitor"}
    assert tracks["kiosk"]["offset_s"] == 0.0
    assert tracks["visitor"]["offset_s"] == 0.5
    assert all(t["mime"] == "video/webm" and t["segment"] == 1 for t in tracks.values())
    [flag] = playback["flags"]
    assert flag["note"] == "holds up a note"
    assert flag["visit_offset_s"] == 1.0

    kiosk_track = tracks["kiosk"]
    whole = await officer.get(kiosk_track["url"])
    assert whole.status == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Type"] == "video/webm"
    body = await whole.read()
    assert len(body) == kiosk_track["size_bytes"]
    assert hashlib.sha256(body).hexdigest() == kiosk_track["sha256"]
    with av.open(io.BytesIO(body)) as container:
        kinds = {stream.type for stream in container.streams}
    assert kinds == {"video", "audio"}

    size = len(body)
    part = await officer.get(kiosk_track["url"], headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert await part.read() == body[100:200]
    tail = await officer.get(kiosk_track["url"], headers={"Range": "bytes=-64"})
    assert (tail.status, await tail.read()) == (206, body[-64:])
    rest = await officer.get(kiosk_track["url"], headers={"Range": f"bytes={size - 10}-"})
    assert (rest.status, await rest.read()) == (206, body[-10:])
    beyond = await officer.get(kiosk_track["url"], headers={"Range": f"bytes={size}-"})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
    for ignored in ("bytes=abc", "bytes=0-1,5-6", "items=0-5", "bytes=9-3"):
        resp = await officer.get(kiosk_track["url"], headers={"Range": ignored})
        assert resp.status == 200, ignored
        assert len(await resp.read()) == size
    stale = await officer.get(
        kiosk_track["url"], headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'}
    )
    assert stale.status == 200

    # One search and one playback were audited; ranged reads were not.
    assert await audit_actions(r.services) == [
        ("recording.search", "success", None),
        ("recording.search", "success", None),
        ("recording.play", "success", f"visit:{r.visit_id}"),
    ]


async def test_files_are_looked_up_by_name_never_by_path(recorded: Recorded) -> None:
    r = recorded
    officer = await ApiUser.sign_in(r.client, r.world.emails["officer_a"])
    base = f"/api/recordings/{r.recording_id}/files"
    assert (await officer.get(f"{base}/kiosk-001.webm")).status == 200
    for name in (
        "manifest.json",  # listed, but not a media file
        "kiosk-002.webm",
        "..%2F..%2Fvv.sqlite3",
        "%2Fetc%2Fpasswd",
        ".hidden",
    ):
        resp = await officer.get(f"{base}/{name}")
        assert resp.status == 404, name
    assert (await officer.get("/api/recordings/999999/files/kiosk-001.webm")).status == 404


async def test_evidence_export_carries_a_verifiable_manifest(recorded: Recorded) -> None:
    r = recorded
    admin = await ApiUser.sign_in(r.client, r.world.emails["admin_a"])
    resp = await admin.get(f"/api/visits/{r.visit_id}/evidence.zip")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    names = set(archive.namelist())
    assert names == {"kiosk-001.webm", "visitor-001.webm", "manifest.json", "SHA256SUMS"}
    sums: dict[str, str] = {}
    for line in archive.read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert set(sums) == names - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
    manifest = json.loads(archive.read("manifest.json"))
    assert (
        hashlib.sha256(archive.read("manifest.json")).hexdigest()
        == (resp.headers["X-Evidence-Manifest-SHA256"])
    )
    assert manifest["visit"]["id"] == r.visit_id
    assert manifest["visit"]["participants"]["kiosk"]["id"] == r.world.kiosks["a1-1"]
    assert manifest["participants"] == ["kiosk", "visitor"]
    assert {f["name"]: f["offset_s"] for f in manifest["files"]} == {
        "kiosk-001.webm": 0.0,
        "visitor-001.webm": 0.5,
    }
    assert manifest["exported_by"]["email"] == r.world.emails["admin_a"]
    assert [f["note"] for f in manifest["flags"]] == ["holds up a note"]
    assert await audit_actions(r.services) == [
        ("recording.export", "success", f"visit:{r.visit_id}")
    ]


async def test_an_altered_file_stops_the_export(recorded: Recorded) -> None:
    r = recorded
    webm = r.services.settings.recordings_dir / f"visit-{r.visit_id}" / "visitor-001.webm"
    data = bytearray(webm.read_bytes())
    data[-5] ^= 0xFF
    webm.write_bytes(bytes(data))
    officer = await ApiUser.sign_in(r.client, r.world.emails["officer_a"])
    resp = await officer.get(f"/api/visits/{r.visit_id}/evidence.zip")
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "recording_altered")
    assert await audit_actions(r.services) == [
        ("recording.export", "failure", f"visit:{r.visit_id}")
    ]
    leftovers = list(r.services.settings.data_dir.glob("evidence-*"))
    assert leftovers == []


async def test_scope_privilege_and_missing_recordings(recorded: Recorded) -> None:
    r = recorded
    services, world = r.services, r.world
    annex = await started_visit(
        services, world, started_ago=timedelta(minutes=50), kiosk="b1-1", person="pb1"
    )
    annex_recording = await record_visit(services, annex, segments=(Segment("kiosk", 1, 0.0, 0.5),))
    attorney = await started_visit(
        services, world, started_ago=timedelta(minutes=45), privileged=True, person="pa2"
    )
    unrecorded = await started_visit(
        services, world, started_ago=timedelta(minutes=35), kiosk="a1-2", person="pa2"
    )
    officer = await ApiUser.sign_in(r.client, world.emails["officer_a"])

    listed = await (await officer.get("/api/recordings")).json()
    assert [i["visit_id"] for i in listed["items"]] == [r.visit_id]
    assert (await officer.get(f"/api/visits/{annex}/recording")).status == 404
    assert (await officer.get(f"/api/visits/{annex}/evidence.zip")).status == 404
    assert (
        await officer.get(f"/api/recordings/{annex_recording}/files/kiosk-001.webm")
    ).status == 404
    assert (
        await officer.get("/api/recordings", params={"facility_id": world.facility_b})
    ).status == 404

    for path in (f"/api/visits/{attorney}/recording", f"/api/visits/{attorney}/evidence.zip"):
        resp = await officer.get(path)
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "privileged_visit")
    resp = await officer.get(f"/api/visits/{unrecorded}/recording")
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "no_recording")

    agency = await ApiUser.sign_in(r.client, world.emails["agency_admin"])
    both = await (await agency.get("/api/recordings")).json()
    assert {i["visit_id"] for i in both["items"]} == {r.visit_id, annex}
    page = await (await agency.get("/api/recordings", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 2
    assert [i["visit_id"] for i in page["items"]] == [annex]  # older visit second

    visitor = await ApiUser.sign_in(r.client, world.emails["visitor"])
    assert (await visitor.get("/api/recordings")).status == 403
    assert (await visitor.get(f"/api/visits/{r.visit_id}/recording")).status == 403

    for bad in ({"limit": 0}, {"date_from": "2030-02-01", "date_to": "2030-01-01"}, {"x": 1}):
        assert (await officer.get("/api/recordings", params=bad)).status == 422, bad
    privileged_audit = [a for a in await audit_actions(services) if a[2] == f"visit:{attorney}"]
    assert privileged_audit == [
        ("recording.play", "failure", f"visit:{attorney}"),
        ("recording.export", "failure", f"visit:{attorney}"),
    ]


async def test_date_filters_use_the_facility_day(recorded: Recorded) -> None:
    r = recorded
    officer = await ApiUser.sign_in(r.client, r.world.emails["officer_a"])
    found = await (await officer.get("/api/recordings")).json()
    start = found["items"][0]["starts_at"]
    async with r.services.read() as s:
        facility = await s.get(Facility, r.world.facility_a)
        assert facility is not None
    local_day = datetime.fromisoformat(start).astimezone(ZoneInfo(facility.timezone)).date()
    same = {"date_from": local_day.isoformat(), "date_to": local_day.isoformat()}
    assert (await (await officer.get("/api/recordings", params=same)).json())["total"] == 1
    later = {"date_from": (local_day + timedelta(days=1)).isoformat()}
    assert (await (await officer.get("/api/recordings", params=later)).json())["total"] == 0
    earlier = {"date_to": (local_day - timedelta(days=1)).isoformat()}
    assert (await (await officer.get("/api/recordings", params=earlier)).json())["total"] == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=50-5000", (50, 99)),
        (" bytes=1-2 ", (1, 2)),
        ("bytes=", None),
        ("bytes=-", None),
        ("bytes=5-1", None),
        ("bytes=0-1,3-4", None),
        ("bytes=1.5-2", None),
        ("chunks=0-1", None),
        ("bytes=" + "9" * 30 + "-", None),
    ],
)
def test_range_header_parsing(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=100-200"])
def test_ranges_outside_the_file_are_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
