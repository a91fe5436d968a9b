"""Reading RTP packets and VP8 payload descriptors without objects: offsets into the bytes.

The relay's lean receive path (`fast_receive.enable_fast_receive`) parses each packet with
these instead of aiortc's `RtpPacket.parse` (which builds an object and decodes every header
extension) and finds keyframe starts from the VP8 payload descriptor (RFC 7741) without
depayloading. Nothing here knows about aiortc.
"""

from __future__ import annotations

import struct
import time

SEQ_TS_SSRC = struct.Struct("!HLL")  # an RTP header's bytes 2-11
RTP_HEADER = struct.Struct("!BBHLL")
EXTENSION_HEADER = struct.Struct("!HH")
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
VP8_KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (what aiortc's `clock.current_ntp_time`
    returns, without its datetime objects)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4_294_967_296.0)


def abs_send_time(ntp: int) -> int:
    """The 24-bit abs-send-time of an NTP timestamp (6.18 fixed point seconds)."""
    return (ntp >> 14) & 0xFFFFFF


def vp8_descriptor_length(payload: bytes) -> int:
    """The length of a VP8 payload descriptor (RFC 7741 4.2); -1 when it is cut short."""
    size = len(payload)
    if size < 1:
        return -1
    pos = 1
    if payload[0] & 0x80:  # X: extended control bits
        if size < 2:
            return -1
        extended = payload[1]
        pos = 2
        if extended & 0x80:  # I: picture id, 7 or 15 bits
            if size <= pos:
                return -1
            pos += 2 if payload[pos] & 0x80 else 1
        if extended & 0x40:  # L: TL0PICIDX
            pos += 1
        if extended & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos if pos <= size else -1


def vp8_data(payload: bytes) -> bytes | None:
    """The VP8 bitstream part of an RTP payload (the descriptor removed); None if malformed."""
    length = vp8_descriptor_length(payload)
    return None if length < 0 else payload[length:]


def vp8_starts_keyframe(payload: bytes) -> bool:
    """True for the first packet of a VP8 key frame: S=1, PID=0, then a key frame header
    (RFC 6386 9.1: P bit clear and the 0x9d012a start code)."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x07:
        return False
    start = vp8_descriptor_length(payload)
    return (
        start >= 0
        and len(payload) >= start + 6
        and not payload[start] & 0x01
        and payload[start + 3 : start + 6] == VP8_KEYFRAME_START_CODE
    )


def header_extension(packet: bytes, ext_pos: int, wanted_id: int) -> bytes | None:
    """The value of header extension `wanted_id` (RFC 8285, one- or two-byte form) of an RTP
    packet whose extension block starts at `ext_pos`; None when absent or malformed."""
    if ext_pos < 0 or not wanted_id:
        return None
    profile, words = EXTENSION_HEADER.unpack_from(packet, ext_pos)
    pos = ext_pos + 4
    end = min(pos + words * 4, len(packet))
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = packet[pos]
            if byte == 0:  # padding
                pos += 1
                continue
            x_id, length = byte >> 4, (byte & 0x0F) + 1
            if x_id == 15:
                return None
            if x_id == wanted_id:
                value = packet[pos + 1 : pos + 1 + length]
                return value if len(value) == length else None
            pos += 1 + length
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos + 1 < end:
            x_id = packet[pos]
            if x_id == 0:
                pos += 1
                continue
            length = packet[pos + 1]
            if x_id == wanted_id:
                value = packet[pos + 2 : pos + 2 + length]
                return value if len(value) == length else None
            pos += 2 + length
    return None
