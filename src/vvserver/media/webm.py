"""A minimal WebM (Matroska) writer for already-encoded VP8 + Opus frames.

No encoder or decoder is opened: frames are written as SimpleBlocks as they are. We write the
container ourselves (rather than through FFmpeg's muxer) so that the Opus track carries its
OpusHead CodecPrivate, which browsers require, and so that nothing depends on the PyAV version.
Element sizes are fixed 8-byte EBML sizes, so the segment size and the duration are patched
in when the file is closed; Cues at the end make the file seekable.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vvserver.media.frames import MediaKind

TIMECODE_SCALE_NS = 1_000_000  # block timestamps in milliseconds
VIDEO_TRACK = 1
AUDIO_TRACK = 2
FRAME_MS: dict[MediaKind, int] = {"video": 33, "audio": 20}  # for the end of the last frame
MAX_CLUSTER_MS = 5_000  # well inside the int16 relative block timecode
OPUS_PRE_SKIP = 312  # samples; what libopus and browsers use
OPUS_SEEK_PRE_ROLL_NS = 80_000_000


@dataclass(frozen=True, slots=True)
class TimedFrame:
    kind: MediaKind
    timestamp_ms: int
    keyframe: bool
    data: bytes


def _vint_size(size: int) -> bytes:
    """An EBML data size, always 8 bytes long (simple, and valid for any size)."""
    return bytes([0x01]) + size.to_bytes(7, "big")


def _element(element_id: int, payload: bytes) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return id_bytes + _vint_size(len(payload)) + payload


def _uint(element_id: int, value: int) -> bytes:
    return _element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _float(element_id: int, value: float) -> bytes:
    return _element(element_id, struct.pack(">d", value))


def _string(element_id: int, value: str) -> bytes:
    return _element(element_id, value.encode("utf-8"))


def vp8_dimensions(keyframe: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame header (RFC 6386 9.1)."""
    width, height = struct.unpack_from("<HH", keyframe, 6)
    return width & 0x3FFF, height & 0x3FFF


def opus_channels(packet: bytes) -> int:
    """1 or 2, from the stereo flag of an Opus packet's TOC byte (RFC 6716 3.1)."""
    return 2 if packet and packet[0] & 0x04 else 1


def opus_head(channels: int) -> bytes:
    """The OpusHead identification header (RFC 7845 5.1), Matroska's CodecPrivate for Opus."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, 48_000, 0, 0)


def _track_entries(video_size: tuple[int, int] | None, audio_channels: int | None) -> bytes:
    entries: list[bytes] = []
    if video_size is not None:
        width, height = video_size
        entries.append(
            _element(
                0xAE,
                _uint(0xD7, VIDEO_TRACK)
                + _uint(0x73C5, VIDEO_TRACK)
                + _uint(0x83, 1)
                + _uint(0x9C, 0)
                + _string(0x86, "V_VP8")
                + _element(0xE0, _uint(0xB0, width) + _uint(0xBA, height)),
            )
        )
    if audio_channels is not None:
        entries.append(
            _element(
                0xAE,
                _uint(0xD7, AUDIO_TRACK)
                + _uint(0x73C5, AUDIO_TRACK)
                + _uint(0x83, 2)
                + _uint(0x9C, 0)
                + _string(0x86, "A_OPUS")
                + _element(0x63A2, opus_head(audio_channels))
                + _uint(0x56AA, OPUS_PRE_SKIP * 1_000_000_000 // 48_000)
                + _uint(0x56BB, OPUS_SEEK_PRE_ROLL_NS)
                + _element(0xE1, _float(0xB5, 48_000.0) + _uint(0x9F, audio_channels)),
            )
        )
    return _element(0x1654AE6B, b"".join(entries))


EBML_HEADER = _element(
    0x1A45DFA3,
    _uint(0x4286, 1)
    + _uint(0x42F7, 1)
    + _uint(0x42F2, 4)
    + _uint(0x42F3, 8)
    + _string(0x4282, "webm")
    + _uint(0x4287, 4)
    + _uint(0x4285, 2),
)


class WebmWriter:
    """Streams frames into a WebM file; sizes and the duration are patched in on close.

    Frames must come in timestamp order per track (across tracks, blocks may lag the
    cluster start a little: relative block timestamps are signed). Video frames before the
    first keyframe are left out, as they cannot be decoded.
    """

    def __init__(
        self, path: Path, *, video_size: tuple[int, int] | None, audio_channels: int | None
    ) -> None:
        if video_size is None and audio_channels is None:
            raise ValueError("a WebM file needs at least one track")
        self.path = path
        self._has_video = video_size is not None
        self._file: BinaryIO = path.open("wb")
        self._file.write(EBML_HEADER)
        self._file.write((0x18538067).to_bytes(4, "big"))
        self._segment_size_at = self._file.tell()
        self._file.write(_vint_size(0))
        self._segment_start = self._file.tell()
        info_head = _uint(0x2AD7B1, TIMECODE_SCALE_NS) + _string(0x4D80, "vvserver")
        info_head += _string(0x5741, "vvserver")
        duration = _float(0x4489, 0.0)
        self._file.write(_element(0x1549A966, info_head + duration))
        self._duration_at = self._file.tell() - 8  # the float is the last 8 bytes of Info
        self._file.write(_track_entries(video_size, audio_channels))
        self._cues: list[tuple[int, int]] = []
        self._cluster_start: int | None = None
        self._blocks: list[bytes] = []
        self._video_started = False
        self._last: dict[MediaKind, int] = {}
        self.end_ms = 0

    def add(self, frame: TimedFrame) -> None:
        if frame.kind == "video":
            if not self._has_video or (not self._video_started and not frame.keyframe):
                return
            self._video_started = True
        # never backwards within a track
        timestamp = max(frame.timestamp_ms, self._last.get(frame.kind, frame.timestamp_ms))
        self._last[frame.kind] = timestamp
        if (
            self._cluster_start is None
            or timestamp - self._cluster_start >= MAX_CLUSTER_MS
            or (frame.kind == "video" and frame.keyframe)
        ):
            self._flush_cluster()
            self._cluster_start = timestamp
            if frame.kind == "video" or not self._has_video:
                self._cues.append((timestamp, self._file.tell() - self._segment_start))
        relative = max(-32768, min(32767, timestamp - self._cluster_start))
        track = VIDEO_TRACK if frame.kind == "video" else AUDIO_TRACK
        header = bytes([0x80 | track]) + struct.pack(">hB", relative, 0x80 if frame.keyframe else 0)
        self._blocks.append(_element(0xA3, header + frame.data))
        self.end_ms = max(self.end_ms, timestamp + FRAME_MS[frame.kind])

    def _flush_cluster(self) -> None:
        if self._cluster_start is not None and self._blocks:
            self._file.write(
                _element(0x1F43B675, _uint(0xE7, self._cluster_start) + b"".join(self._blocks))
            )
        self._blocks = []

    def close(self) -> None:
        self._flush_cluster()
        cue_track = VIDEO_TRACK if self._has_video else AUDIO_TRACK
        points = b"".join(
            _element(
                0xBB,
                _uint(0xB3, timestamp)
                + _element(0xB7, _uint(0xF7, cue_track) + _uint(0xF1, position)),
            )
            for timestamp, position in self._cues
        )
        self._file.write(_element(0x1C53BB6B, points))
        end = self._file.tell()
        self._file.seek(self._segment_size_at)
        self._file.write(_vint_size(end - self._segment_start))
        self._file.seek(self._duration_at)
        self._file.write(struct.pack(">d", float(self.end_ms)))
        self._file.close()
