"""Encoded media frames as the relay moves them, and the little codec knowledge it needs."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

MediaKind = Literal["audio", "video"]
KINDS: tuple[MediaKind, ...] = ("audio", "video")

VIDEO_CLOCK_RATE = 90_000
AUDIO_CLOCK_RATE = 48_000  # Opus RTP clock rate, whatever the real sample rate


def clock_rate(kind: MediaKind) -> int:
    return VIDEO_CLOCK_RATE if kind == "video" else AUDIO_CLOCK_RATE


def time_base(kind: MediaKind) -> Fraction:
    return Fraction(1, clock_rate(kind))


@dataclass(slots=True)
class EncodedFrame:
    """One complete encoded frame (VP8) or packet (Opus), never decoded by the relay.

    Not frozen: a frozen dataclass's __init__ costs several times more, and one is made per
    frame. Nothing changes a frame after it is made.
    """

    kind: MediaKind
    data: bytes
    rtp_timestamp: int  # the source's RTP timestamp (32-bit, random origin)
    keyframe: bool  # always True for audio: any packet can start playback
    ssrc: int
    arrival: float  # event-loop time when the frame became complete
    after_loss: bool = False  # frames before this one were lost: decoding needs a keyframe


def vp8_descriptor_starts_frame(payload: bytes) -> bool:
    """True when a VP8 RTP payload (RFC 7741) starts partition 0, i.e. a new frame.

    Payload descriptor first octet: X R N S R PID(3); a frame starts at S=1, PID=0.
    """
    if not payload:
        return False
    return bool(payload[0] & 0x10) and (payload[0] & 0x07) == 0


def vp8_is_keyframe(frame: bytes) -> bool:
    """True for a VP8 key frame (RFC 6386 9.1: P bit clear and the 0x9d012a start code)."""
    return len(frame) >= 10 and (frame[0] & 0x01) == 0 and frame[3:6] == b"\x9d\x01\x2a"
