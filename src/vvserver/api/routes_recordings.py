"""Routes: recordings search, a visit's playback manifest, file streaming (HTTP Range), evidence.

Files are streamed from disk in chunks, never read whole. ``Range`` is honoured for one range
(``bytes=a-b``, ``bytes=a-``, ``bytes=-n``); a header that is not one well-formed byte range
is ignored (200 with the whole file, as RFC 9110 section 14.2 allows), a well-formed range
that starts beyond the end is 416 with ``Content-Range: bytes */size``. ``If-Range`` with
another entity tag than the file's (its SHA-256) gets the whole file.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import IO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from vvserver.api.endpoints import ADMINS, STAFF, ApiRouter, RequestContext
from vvserver.api.middleware import error_response
from vvserver.api.schemas_recordings import (
    HoldIn,
    HoldOut,
    NamedOut,
    PersonRefOut,
    PlaybackFlagOut,
    PlaybackOut,
    RecordingItemOut,
    RecordingListOut,
    RecordingSearchQuery,
    TrackOut,
)
from vvserver.app_keys import REQUEST_ID
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import NotFound
from vvserver.domain.recordings.evidence import export_evidence
from vvserver.domain.recordings.holds import HoldView, lift_hold, place_hold, visit_holds
from vvserver.domain.recordings.playback import playback_manifest, recording_file
from vvserver.domain.recordings.search import RecordingSearch, search_recordings

logger = logging.getLogger(__name__)

router = ApiRouter("recordings")

CHUNK = 256 * 1024
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single byte range; None: serve the whole file.

    Raises RangeNotSatisfiable for a well-formed range no byte of the file falls in.
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # not one byte range (other unit, several ranges, garbage): ignored
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid range-spec: ignored
    if first >= size:
        raise RangeNotSatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


class FileStreamResponse(web.StreamResponse):
    """Streams an open file (or part of it) when aiohttp prepares the response; closes it."""

    def __init__(
        self,
        source: IO[bytes],
        *,
        status: int,
        first: int,
        length: int,
        headers: dict[str, str],
    ) -> None:
        super().__init__(status=status, headers=headers)
        self._source = source
        self._first = first
        self._length = length
        self.content_length = length

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD":
                return writer
            await asyncio.to_thread(self._source.seek, self._first)
            left = self._length
            while left > 0:
                chunk = await asyncio.to_thread(self._source.read, min(CHUNK, left))
                if not chunk:
                    logger.error("file ended %d bytes early while streaming", left)
                    break
                await self.write(chunk)
                left -= len(chunk)
            return writer
        finally:
            self._source.close()


def file_response(
    request: web.Request,
    path: Path,
    *,
    size: int,
    etag: str,
    content_type: str,
    disposition: str,
) -> web.StreamResponse:
    """A 200, 206 or 416 for ``path`` as the request's Range and If-Range ask."""
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        "ETag": f'"{etag}"',
        "Cache-Control": "no-store, private",
    }
    span: tuple[int, int] | None = None
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if header is not None and (if_range is None or if_range.strip() == f'"{etag}"'):
        try:
            span = parse_range(header, size)
        except RangeNotSatisfiable:
            response = error_response(
                416,
                "range_not_satisfiable",
                f"the file has {size} bytes",
                request_id=request.get(REQUEST_ID),
            )
            response.headers["Content-Range"] = f"bytes */{size}"
            response.headers["Accept-Ranges"] = "bytes"
            return response
    source = path.open("rb")
    if span is None:
        return FileStreamResponse(source, status=200, first=0, length=size, headers=headers)
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return FileStreamResponse(
        source, status=206, first=first, length=last - first + 1, headers=headers
    )


def _caller(ctx: RequestContext) -> Caller:
    return Caller(ctx.require(), ctx.record)


@router.route(
    "GET", "/api/recordings", roles=STAFF, query=RecordingSearchQuery, response=RecordingListOut
)
async def list_recordings(ctx: RequestContext, query: RecordingSearchQuery) -> RecordingListOut:
    """Finished recordings in scope, newest first (every search is audited)."""
    page = await search_recordings(
        ctx.services,
        _caller(ctx),
        RecordingSearch(
            facility_id=query.facility_id,
            person_id=query.person_id,
            visitor_id=query.visitor_id,
            kiosk_id=query.kiosk_id,
            legal_hold=query.legal_hold,
            date_from=query.date_from,
            date_to=query.date_to,
            limit=query.limit,
            offset=query.offset,
        ),
    )
    return RecordingListOut(
        items=[
            RecordingItemOut(
                visit_id=item.visit_id,
                recording_id=item.recording_id,
                facility_id=item.facility_id,
                person=PersonRefOut(
                    id=item.person.id,
                    name=item.person.name,
                    booking_number=item.person.booking_number,
                ),
                visitor=NamedOut(id=item.visitor.id, name=item.visitor.name),
                kiosk=NamedOut(id=item.kiosk.id, name=item.kiosk.name),
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                duration_s=item.duration_s,
                size_bytes=item.size_bytes,
                flags=item.flags,
                legal_hold=item.legal_hold,
                purge_after=item.purge_after,
            )
            for item in page.items
        ],
        total=page.total,
    )


@router.route("GET", "/api/visits/{visit_id}/recording", roles=STAFF, response=PlaybackOut)
async def visit_recording(ctx: RequestContext) -> PlaybackOut:
    """Both participants' files on one timeline, with the flags (every playback is audited)."""
    playback = await playback_manifest(ctx.services, _caller(ctx), ctx.path_int("visit_id"))
    holds = await visit_holds(ctx.services, ctx.require(), playback.visit_id)
    return PlaybackOut(
        visit_id=playback.visit_id,
        recording_id=playback.recording_id,
        started_at=playback.started_at,
        tracks=[
            TrackOut(
                participant="kiosk" if track.participant == "kiosk" else "visitor",
                segment=track.segment,
                url=f"/api/recordings/{track.recording_id}/files/{track.name}",
                offset_s=track.offset_s,
                duration_s=track.duration_s,
                size_bytes=track.size_bytes,
                sha256=track.sha256,
                recording_id=track.recording_id,
                name=track.name,
            )
            for track in playback.tracks
        ],
        flags=[
            PlaybackFlagOut(
                id=flag.id,
                offset_s=flag.offset_s,
                visit_offset_s=flag.visit_offset_s,
                note=flag.note,
                at=flag.at,
            )
            for flag in playback.flags
        ],
        legal_hold=any(hold.active for hold in holds),
        holds=[hold_out(hold) for hold in holds],
    )


def hold_out(hold: HoldView) -> HoldOut:
    return HoldOut(
        id=hold.id,
        visit_id=hold.visit_id,
        active=hold.active,
        reason=hold.reason,
        placed_by=hold.placed_by,
        placed_at=hold.placed_at,
        lifted_by=hold.lifted_by,
        lifted_at=hold.lifted_at,
        lift_reason=hold.lift_reason,
    )


@router.route(
    "POST", "/api/visits/{visit_id}/hold", roles=ADMINS, body=HoldIn, response=HoldOut, status=201
)
async def place(ctx: RequestContext, body: HoldIn) -> HoldOut:
    """Put the visit's recordings on legal hold (the purge skips them); audited with the reason.

    409 ``privileged_not_recorded`` (privileged visits are never recorded), ``no_recording``,
    ``recording_purged`` or ``hold_exists``.
    """
    return hold_out(
        await place_hold(ctx.services, _caller(ctx), ctx.path_int("visit_id"), body.reason)
    )


@router.route(
    "POST", "/api/visits/{visit_id}/hold/lift", roles=ADMINS, body=HoldIn, response=HoldOut
)
async def lift(ctx: RequestContext, body: HoldIn) -> HoldOut:
    """Lift the hold (audited); nothing is deleted now: the purge runs on its normal schedule.

    A purge date already past moves to ``VV_HOLD_RELEASE_GRACE_DAYS`` from now. 409 ``no_hold``.
    """
    return hold_out(
        await lift_hold(ctx.services, _caller(ctx), ctx.path_int("visit_id"), body.reason)
    )


@router.route("GET", "/api/visits/{visit_id}/holds", roles=STAFF, response=list[HoldOut])
async def holds_of_visit(ctx: RequestContext) -> list[HoldOut]:
    """Every legal hold placed on the visit's recordings (who, when, why), newest first."""
    return [
        hold_out(h)
        for h in await visit_holds(ctx.services, ctx.require(), ctx.path_int("visit_id"))
    ]


@router.route(
    "GET",
    "/api/recordings/{recording_id}/files/{name}",
    roles=STAFF,
    raw_response_type="video/webm",
)
async def recording_file_bytes(ctx: RequestContext) -> web.StreamResponse:
    """One WebM file of a recording, with HTTP Range (206/416); not re-audited per range."""
    name = ctx.request.match_info.get("name", "")
    if not FILE_NAME.fullmatch(name):
        raise NotFound("no such file in this recording")
    stored = await recording_file(ctx.services, ctx.require(), ctx.path_int("recording_id"), name)
    return file_response(
        ctx.request,
        stored.path,
        size=stored.size,
        etag=stored.sha256,
        content_type="video/webm",
        disposition=f'inline; filename="{stored.name}"',
    )


@router.route(
    "GET",
    "/api/visits/{visit_id}/evidence.zip",
    roles=STAFF,
    raw_response_type="application/zip",
)
async def evidence_zip(ctx: RequestContext) -> web.StreamResponse:
    """The visit's recording as a zip with manifest.json and SHA256SUMS (audited export)."""
    package = await export_evidence(ctx.services, _caller(ctx), ctx.path_int("visit_id"))
    source = package.path.open("rb")
    package.discard()  # the open handle keeps the bytes until the stream is done
    return FileStreamResponse(
        source,
        status=200,
        first=0,
        length=package.size,
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "Cache-Control": "no-store, private",
            "X-Evidence-Manifest-SHA256": package.manifest_sha256,
        },
    )
