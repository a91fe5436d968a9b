"""A media file as a clip for `TestPeer`: its VP8 and Opus packets, sent without re-encoding.

Accepts WebM/Matroska (what the recorder writes, and what `ffmpeg -c:v libvpx -c:a libopus`
makes). Other codecs are refused with the command that converts them: the whole point is that
a headless participant never spends CPU on encoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av

from vvserver.client.sample_clip import Clip, ClipFrame, ClipSpec, clip_frame

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 200 * 1024 * 1024


class UnusableMediaFile(ValueError):
    """The file cannot be sent as it is (wrong codecs, no video, unreadable)."""


def clip_from_file(path: Path) -> Clip:
    """Demux ``path`` into VP8 video and Opus audio frames (video from its first keyframe)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UnusableMediaFile(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise UnusableMediaFile(f"cannot read {path}: {exc}") from exc
    with container:
        video_stream = next(iter(container.streams.video), None)
        audio_stream = next(iter(container.streams.audio), None)
        if video_stream is None or video_stream.codec_context.name != "vp8":
            raise UnusableMediaFile(
                f"{path} needs a VP8 video track; convert it with "
                "`ffmpeg -i IN -c:v libvpx -b:v 500k -c:a libopus OUT.webm`"
            )
        if audio_stream is not None and audio_stream.codec_context.name != "opus":
            raise UnusableMediaFile(f"{path} has non-Opus audio; convert it with libopus")
        streams = [s for s in (video_stream, audio_stream) if s is not None]
        video: list[ClipFrame] = []
        audio: list[ClipFrame] = []
        for packet in container.demux(*streams):
            if packet.size == 0:
                continue  # a flush packet
            data = bytes(packet)
            if packet.stream is video_stream:
                if not video and not packet.is_keyframe:
                    continue  # a receiver can only start at a keyframe
                video.append(clip_frame("video", len(video), data, bool(packet.is_keyframe)))
            else:
                audio.append(clip_frame("audio", len(audio), data, True))
        rate = video_stream.average_rate or video_stream.guessed_rate or 30
        fps = max(1, round(float(rate)))
        spec = ClipSpec(
            seconds=len(video) / fps,
            width=video_stream.codec_context.width,
            height=video_stream.codec_context.height,
            fps=fps,
        )
    if not video:
        raise UnusableMediaFile(f"{path} has no video frames")
    logger.info(
        "media file %s: %d video frames at %d fps, %d audio packets",
        path,
        len(video),
        fps,
        len(audio),
    )
    return Clip(spec, tuple(video), tuple(audio))
