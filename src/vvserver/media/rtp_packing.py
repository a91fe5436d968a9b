"""Packetizing encoded frames into RTP packet bytes, the cheap way (no per-packet objects).

aiortc's own path builds an `av.Packet` per frame, a `VpxPayloadDescriptor` and an `RtpPacket`
per packet, and serializes the header extensions of every packet one by one. The relay's
senders instead build the bytes here: the header extensions once per frame, the fixed RTP
header with one `struct.pack` per packet. The bytes are the same as aiortc's (RFC 3550 header,
RFC 8285 extensions as given, RFC 7741 VP8 descriptor with a 15-bit picture id and the same
1300-byte payload limit), so receivers cannot tell the difference.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

VP8_PACKET_MAX = 1300  # aiortc's PACKET_MAX (payload descriptor included)
PICTURE_ID_MOD = 1 << 15
_RTP_HEADER = struct.Struct("!BBHLL")
_EXTENSION_HEADER = struct.Struct("!HH")
_VP8_DESCRIPTOR = struct.Struct("!BBH")
_RTP_VERSION_BITS = 2 << 6
_EXTENSION_BIT = 1 << 4


def vp8_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """The RTP payloads of one VP8 frame: descriptor (X=1, I=1, M=1) + up to 1296 bytes."""
    first = _VP8_DESCRIPTOR.pack(0x90, 0x80, 0x8000 | picture_id)
    rest = _VP8_DESCRIPTOR.pack(0x80, 0x80, 0x8000 | picture_id)
    step = VP8_PACKET_MAX - len(first)
    if len(frame) <= step:
        return [first + frame]
    payloads = [first + frame[:step]]
    payloads += [rest + frame[pos : pos + step] for pos in range(step, len(frame), step)]
    return payloads


def opus_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """An Opus packet is one RTP payload as it is."""
    return [frame]


Packetizer = Callable[[bytes, int], list[bytes]]


def packetizer(mime_type: str) -> Packetizer:
    """The packetizer for a forwarded codec ("video/VP8" or "audio/opus")."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return vp8_payloads
    if mime == "audio/opus":
        return opus_payloads
    raise ValueError(f"the relay does not forward {mime_type}")


def rtp_packets(
    payloads: list[bytes],
    *,
    payload_type: int,
    first_sequence_number: int,
    timestamp: int,
    ssrc: int,
    extension_profile: int,
    extension_value: bytes,
) -> list[bytes]:
    """RTP packets for one frame's payloads; the marker bit is set on the last one."""
    if extension_value:
        first_byte = _RTP_VERSION_BITS | _EXTENSION_BIT
        extension = _EXTENSION_HEADER.pack(extension_profile, len(extension_value) >> 2)
        extension += extension_value
    else:
        first_byte = _RTP_VERSION_BITS
        extension = b""
    pack = _RTP_HEADER.pack
    last = len(payloads) - 1
    return [
        pack(
            first_byte,
            (0x80 if index == last else 0) | payload_type,
            (first_sequence_number + index) & 0xFFFF,
            timestamp,
            ssrc,
        )
        + extension
        + payload
        for index, payload in enumerate(payloads)
    ]
