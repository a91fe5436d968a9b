"""A small pre-encoded VP8 + Opus clip for test peers and benchmarks.

Encoded once with PyAV (a moving test pattern and a warbling tone) and cached in a file, so
peers that send it spend no CPU on encoding. Every frame is identified by the SHA-256 of its
bytes, so a receiver can tell which clip frame it got without decoding anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.frame import PictureType

from vvserver.media.frames import MediaKind

logger = logging.getLogger(__name__)

_MAGIC = b"VVCLIP1\n"
_RECORD = struct.Struct("!BBI")  # kind (0 audio, 1 video), keyframe, length
OPUS_FRAME_SAMPLES = 960  # 20 ms at 48 kHz


@dataclass(frozen=True, slots=True)
class ClipFrame:
    kind: MediaKind
    index: int  # position among the clip's frames of this kind
    data: bytes
    keyframe: bool
    digest: bytes  # SHA-256 of data


@dataclass(frozen=True, slots=True)
class ClipSpec:
    seconds: float = 3.0
    width: int = 640
    height: int = 480
    fps: int = 30
    video_bitrate: int = 500_000
    keyframe_every: int = 30
    audio_bitrate: int = 32_000

    @property
    def cache_name(self) -> str:
        return (
            f"clip-{self.seconds:g}s-{self.width}x{self.height}@{self.fps}-"
            f"{self.video_bitrate}-k{self.keyframe_every}-a{self.audio_bitrate}.vvclip"
        )


@dataclass(frozen=True)
class Clip:
    spec: ClipSpec
    video: tuple[ClipFrame, ...]
    audio: tuple[ClipFrame, ...]
    _by_digest: dict[bytes, ClipFrame] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for frame in (*self.video, *self.audio):
            self._by_digest.setdefault(frame.digest, frame)

    def frames(self, kind: MediaKind) -> tuple[ClipFrame, ...]:
        return self.video if kind == "video" else self.audio

    def identify(self, data: bytes) -> ClipFrame | None:
        """The clip frame with exactly these bytes, if any."""
        return self._by_digest.get(hashlib.sha256(data).digest())

    def by_digest(self, digest: bytes) -> ClipFrame | None:
        """The clip frame whose bytes have this SHA-256 digest, if any."""
        return self._by_digest.get(digest)


def clip_frame(kind: MediaKind, index: int, data: bytes, keyframe: bool) -> ClipFrame:
    return ClipFrame(kind, index, data, keyframe, hashlib.sha256(data).digest())


def _encode_video(spec: ClipSpec) -> list[ClipFrame]:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width = spec.width
    ctx.height = spec.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, spec.fps)
    ctx.framerate = Fraction(spec.fps)
    ctx.bit_rate = spec.video_bitrate
    ctx.gop_size = spec.keyframe_every
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rows = np.arange(spec.height)[:, None]
    cols = np.arange(spec.width)[None, :]
    chroma = np.full((spec.height // 2, spec.width), 128, np.uint8)
    packets: list[Any] = []
    for index in range(round(spec.seconds * spec.fps)):
        luma = ((cols + rows + index * 4) % 256).astype(np.uint8)
        luma[(index * 7) % (spec.height - 40) :][:40, :40] = 255  # a moving square
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = index
        if index % spec.keyframe_every == 0:
            frame.pict_type = PictureType.I
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return [clip_frame("video", i, bytes(p), bool(p.is_keyframe)) for i, p in enumerate(packets)]


def _encode_audio(spec: ClipSpec) -> list[ClipFrame]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48_000
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = spec.audio_bitrate
    ctx.time_base = Fraction(1, 48_000)
    rng = np.random.default_rng(7)
    packets: list[Any] = []
    for index in range(round(spec.seconds * 50)):
        t = (np.arange(OPUS_FRAME_SAMPLES) + index * OPUS_FRAME_SAMPLES) / 48_000
        tone = np.sin(2 * np.pi * (440 + 100 * np.sin(t)) * t) * 8000
        samples = (tone + rng.normal(0, 300, OPUS_FRAME_SAMPLES)).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = index * OPUS_FRAME_SAMPLES
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return [clip_frame("audio", i, bytes(p), True) for i, p in enumerate(packets) if p.size]


def _write(path: Path, frames: list[ClipFrame]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(_MAGIC)
        for frame in frames:
            kind = 1 if frame.kind == "video" else 0
            out.write(_RECORD.pack(kind, int(frame.keyframe), len(frame.data)))
            out.write(frame.data)
    os.replace(temporary, path)  # atomic: concurrent test runs never read half a file


def _read(path: Path) -> tuple[list[ClipFrame], list[ClipFrame]]:
    blob = path.read_bytes()
    if not blob.startswith(_MAGIC):
        raise ValueError(f"{path} is not a clip file")
    video: list[ClipFrame] = []
    audio: list[ClipFrame] = []
    pos = len(_MAGIC)
    while pos < len(blob):
        kind_code, keyframe, length = _RECORD.unpack_from(blob, pos)
        pos += _RECORD.size
        data = blob[pos : pos + length]
        if len(data) != length:
            raise ValueError(f"{path} is truncated")
        pos += length
        if kind_code == 1:
            video.append(clip_frame("video", len(video), data, bool(keyframe)))
        else:
            audio.append(clip_frame("audio", len(audio), data, True))
    return video, audio


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "vvserver-clips"


_loaded: dict[tuple[ClipSpec, Path], Clip] = {}


def load_clip(spec: ClipSpec | None = None, cache_dir: Path | None = None) -> Clip:
    """The clip for `spec`, encoded on first use and cached on disk and in memory."""
    spec = spec or ClipSpec()
    path = (cache_dir or default_cache_dir()) / spec.cache_name
    if (spec, path) in _loaded:
        return _loaded[(spec, path)]
    try:
        video, audio = _read(path)
    except (OSError, ValueError, struct.error):
        logger.info("encoding test clip %s", path)
        video, audio = _encode_video(spec), _encode_audio(spec)
        _write(path, [*video, *audio])
    if not video or not video[0].keyframe or not audio:
        raise ValueError(f"clip {path} does not start with a keyframe")
    clip = Clip(spec, tuple(video), tuple(audio))
    _loaded[(spec, path)] = clip
    return clip
