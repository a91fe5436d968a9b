"""Crash-safe per-segment packet logs: what a recording is written as during a call.

One file per participant connection segment holds that participant's audio and video frames
as they arrive (encoded, never decoded), like Janus' .mjr files. Records are appended and
flushed to the OS at least every `flush_interval` seconds, so a SIGKILL of the server loses at
most that much; a reader stops cleanly at a torn last record. The log is remuxed into WebM
when the visit ends (or at start-up, for logs a crash left behind).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from vvserver.media.frames import EncodedFrame, MediaKind

logger = logging.getLogger(__name__)

LOG_SUFFIX = ".vvlog"
_MAGIC = b"VVPLOG1\n"
_HEADER_LENGTH = struct.Struct("!I")
_RECORD = struct.Struct("!BBIqI")  # kind, flags, rtp timestamp, arrival (us), data length
_KINDS: dict[MediaKind, int] = {"audio": 0, "video": 1}
_KIND_NAMES: dict[int, MediaKind] = {0: "audio", 1: "video"}
MAX_FRAME_BYTES = 4 * 1024 * 1024
# About 1 s of a 500 kbps call: the file is written about once per flush instead of every few
# frames (8 KiB, Python's default), and a stalled participant still has less than ~1 s unwritten.
WRITE_BUFFER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    visit_id: int
    role: str
    segment: int
    started_at: datetime  # wall clock (aware UTC) of arrival time 0

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "visit_id": self.visit_id,
                "role": self.role,
                "segment": self.segment,
                "started_at": self.started_at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SegmentInfo:
        data = json.loads(raw)
        return cls(
            visit_id=int(data["visit_id"]),
            role=str(data["role"]),
            segment=int(data["segment"]),
            started_at=datetime.fromisoformat(data["started_at"]),
        )


@dataclass(frozen=True, slots=True)
class LoggedFrame:
    kind: MediaKind
    keyframe: bool
    rtp_timestamp: int
    arrival: float  # seconds since the segment's started_at
    data: bytes


class PacketLogWriter:
    """Appends frames of one participant segment; flushes at least every `flush_interval`."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_file",
        "_flush_interval",
        "_last_flush",
        "_origin",
        "bytes",
        "frames",
        "info",
        "path",
    )

    def __init__(
        self, path: Path, info: SegmentInfo, *, origin: float, flush_interval: float = 1.0
    ) -> None:
        self.path = path
        self.info = info
        self._origin = origin  # event-loop time that corresponds to info.started_at
        self._flush_interval = flush_interval
        self._last_flush = origin
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = path.open("xb", buffering=WRITE_BUFFER_BYTES)
        header = info.to_json()
        self._file.write(_MAGIC + _HEADER_LENGTH.pack(len(header)) + header)
        self._file.flush()
        self.frames = 0
        self.bytes = 0

    def write(self, frame: EncodedFrame) -> None:
        if self._file is None or len(frame.data) > MAX_FRAME_BYTES:
            return
        arrival_us = round((frame.arrival - self._origin) * 1_000_000)
        flags = 1 if frame.keyframe else 0
        record = _RECORD.pack(
            _KINDS[frame.kind], flags, frame.rtp_timestamp, arrival_us, len(frame.data)
        )
        self._file.write(record + frame.data)  # one buffered write per frame, not two
        self.frames += 1
        self.bytes += len(frame.data)
        if frame.arrival - self._last_flush >= self._flush_interval:
            self._file.flush()
            self._last_flush = frame.arrival

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_packet_log(path: Path) -> tuple[SegmentInfo, Iterator[LoggedFrame]]:
    """The segment's info and its frames (streamed), up to the last complete record."""
    with path.open("rb") as file:
        head = file.read(len(_MAGIC) + _HEADER_LENGTH.size)
        if not head.startswith(_MAGIC) or len(head) < len(_MAGIC) + _HEADER_LENGTH.size:
            raise ValueError(f"{path} is not a packet log")
        (header_length,) = _HEADER_LENGTH.unpack_from(head, len(_MAGIC))
        raw_info = file.read(header_length)
        if len(raw_info) != header_length:
            raise ValueError(f"{path} has a torn header")
        info = SegmentInfo.from_json(raw_info)
        frames_start = file.tell()

    def frames() -> Iterator[LoggedFrame]:
        with path.open("rb") as file:
            file.seek(frames_start)
            while len(record := file.read(_RECORD.size)) == _RECORD.size:
                kind, flags, rtp_timestamp, arrival_us, length = _RECORD.unpack(record)
                if kind not in _KIND_NAMES or length > MAX_FRAME_BYTES:
                    logger.warning("%s has a corrupt record: stopping there", path)
                    return
                data = file.read(length)
                if len(data) != length:
                    break
                yield LoggedFrame(
                    kind=_KIND_NAMES[kind],
                    keyframe=bool(flags & 1),
                    rtp_timestamp=rtp_timestamp,
                    arrival=arrival_us / 1_000_000,
                    data=data,
                )
            if record:
                logger.info("%s ends in a torn record (a crash): stopping there", path)

    return info, frames()
