"""The lean receive path reads packets as aiortc would: the same VP8 descriptors, header
extensions, NACK lists, clock and incoming bitrate, from offsets instead of objects."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from aiortc import clock
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rate import RateCounter
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import HeaderExtensions, RtpPacket
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.media.rtp_wire import extensions_map
from vvserver.media._rtp_native import read_abs_send_time
from vvserver.media.receive_state import LeanRateCounter, _Nacks
from vvserver.media.rtp_packing import vp8_payloads
from vvserver.media.rtp_parsing import (
    abs_send_time,
    header_extension,
    ntp_now,
    vp8_data,
    vp8_descriptor_length,
    vp8_starts_keyframe,
)


@pytest.mark.parametrize(
    "descriptor",
    [
        VpxPayloadDescriptor(partition_start=1, partition_id=0),
        VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=17),
        VpxPayloadDescriptor(partition_start=0, partition_id=0, picture_id=1234),
        VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=99, tl0picidx=5),
        VpxPayloadDescriptor(partition_start=1, partition_id=2, picture_id=300, tid=(1, 1)),
        VpxPayloadDescriptor(
            partition_start=1, partition_id=0, picture_id=300, tl0picidx=3, tid=(2, 0), keyidx=4
        ),
    ],
)
def test_vp8_descriptors_are_read_as_aiortc_reads_them(descriptor: VpxPayloadDescriptor) -> None:
    payload = bytes(descriptor) + os.urandom(50)
    _, data = VpxPayloadDescriptor.parse(payload)
    assert vp8_descriptor_length(payload) == len(bytes(descriptor))
    assert vp8_data(payload) == data


def test_cut_short_descriptors_are_malformed() -> None:
    assert vp8_data(b"") is None
    assert vp8_data(b"\x90") is None  # X set, no extension octet
    assert vp8_data(b"\x90\x80") is None  # I set, no picture id
    assert vp8_data(b"\x90\x80\x80") is None  # a 15-bit picture id cut short


def test_a_keyframe_start_is_found_from_the_first_packet_alone() -> None:
    keyframe = b"\x10\x02\x00\x9d\x01\x2a" + os.urandom(3000)
    delta = b"\x31" + os.urandom(3000)
    first, second, *_ = vp8_payloads(keyframe, 77)
    assert vp8_starts_keyframe(first)
    assert not vp8_starts_keyframe(second)  # not a partition start
    assert not vp8_starts_keyframe(vp8_payloads(delta, 78)[0])
    assert not vp8_starts_keyframe(b"\x10")


@pytest.mark.parametrize("two_byte", [False, True])
def test_header_extensions_are_read_as_aiortc_reads_them(two_byte: bool) -> None:
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    packet.extensions = HeaderExtensions(mid="a" * (20 if two_byte else 3), abs_send_time=0xABCDE)
    data = packet.serialize(extensions_map())
    assert bool(data[0] & 0x10)
    parsed = RtpPacket.parse(data, extensions_map())
    value = header_extension(data, 12, 3)
    assert value is not None
    assert int.from_bytes(value, "big") == parsed.extensions.abs_send_time
    assert header_extension(data, 12, 1) == str(parsed.extensions.mid).encode()
    assert header_extension(data, 12, 9) is None
    assert header_extension(data, -1, 3) is None


def abs_send_time_in_python(packet: bytes, ext_pos: int, wanted_id: int) -> Any:
    """What FastReceive._estimate reads in Python: the value as an int when it is 3 bytes."""
    try:
        value = header_extension(packet, ext_pos, wanted_id)
    except struct.error:
        return struct.error
    return None if value is None or len(value) != 3 else int.from_bytes(value, "big")


def abs_send_time_in_c(packet: bytes, ext_pos: int, wanted_id: int) -> Any:
    try:
        return read_abs_send_time(packet, ext_pos, wanted_id)
    except struct.error:
        return struct.error


@pytest.mark.parametrize("two_byte", [False, True])
def test_the_c_abs_send_time_reader_reads_aiortcs_packets(two_byte: bool) -> None:
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    packet.extensions = HeaderExtensions(mid="a" * (20 if two_byte else 3), abs_send_time=0xABCDE)
    data = packet.serialize(extensions_map())
    assert read_abs_send_time(data, 12, 3) == 0xABCDE
    mid = read_abs_send_time(data, 12, 1)  # "aaa" is 3 bytes too; 20 are not
    assert mid == (None if two_byte else int.from_bytes(b"aaa", "big"))
    assert read_abs_send_time(data, 12, 9) is None
    assert read_abs_send_time(data, -1, 3) is None
    assert read_abs_send_time(data, 12, 0) is None
    assert read_abs_send_time(data, 12, 2**70) is None
    assert read_abs_send_time(bytearray(data), 12, 3) == 0xABCDE
    with pytest.raises(struct.error):
        read_abs_send_time(data, len(data) - 3, 3)
    with pytest.raises(struct.error):
        read_abs_send_time(data, 2**70, 3)
    with pytest.raises(TypeError):
        read_abs_send_time(data, 12.0, 3)  # type: ignore[arg-type]


EXTENSION_ELEMENTS = [
    b"\x00",  # padding
    b"\x32\x01\x02\x03",  # one-byte form: id 3, 3 bytes
    b"\x31\x01\x02",  # id 3, 2 bytes
    b"\x22\xaa\xbb\xcc",
    b"\xe2xyz",  # id 14
    b"\xf0",  # id 15: the end
    b"\x03\x03\x01\x02\x03",  # two-byte form: id 3, 3 bytes
    b"\x03\x02\x01\x02",
    b"\x0f\x03abc",
    b"\x02\x01z",
    b"\x32\x01",  # cut short (at the packet's end)
    b"\x03\x03\x01",
]


@settings(max_examples=500)
@given(
    st.sampled_from([b"\xbe\xde", b"\x10\x00", b"\x10\x0f", b"\x10\x10", b"\x00\x00"]),
    st.integers(0, 6),
    st.lists(st.sampled_from(EXTENSION_ELEMENTS) | st.binary(max_size=4), max_size=8),
    st.integers(-2, 40),
    st.sampled_from([0, 1, 2, 3, 14, 15, 16, 255, 256, -1]),
)
@example(b"\xbe\xde", 1, [b"\x32\x01\x02\x03"], 12, 3)
@example(b"\xbe\xde", 1, [b"\x00", b"\x32\x01\x02\x03"], 12, 3)  # past the block's end
@example(b"\xbe\xde", 3, [b"\xe2xyz", b"\x32\x01\x02\x03"], 12, 3)
@example(b"\xbe\xde", 3, [b"\xf2xyz", b"\x32\x01\x02\x03"], 12, 3)  # after id 15: none
@example(b"\x10\x00", 2, [b"\x03\x03\x01\x02\x03"], 12, 3)
@example(b"\x10\x00", 2, [b"\x03\x02\x01\x02", b"\x03\x03\x01\x02\x03"], 12, 3)
@example(b"\xbe\xde", 2, [b"\x32\x01\x02"], 12, 3)  # cut short by the packet's end
@example(b"\x10\x00", 2, [b"\x03\x03\x01\x02"], 12, 3)
def test_the_c_abs_send_time_reader_reads_what_header_extension_reads(
    profile: bytes, words: int, parts: list[bytes], ext_pos: int, wanted_id: int
) -> None:
    packet = bytes(12) + profile + words.to_bytes(2, "big") + b"".join(parts)
    for at in (ext_pos, 12):
        assert abs_send_time_in_c(packet, at, wanted_id) == abs_send_time_in_python(
            packet, at, wanted_id
        )


def test_the_clock_is_aiortcs_ntp_clock() -> None:
    ours, theirs = ntp_now(), clock.current_ntp_time()
    assert abs(ours - theirs) < (1 << 32) // 100  # within 10 ms
    assert abs_send_time(ours) == (ours >> 14) & 0xFFFFFF


@given(st.lists(st.integers(min_value=-3, max_value=300), min_size=1, max_size=200))
def test_nacks_name_the_same_missing_packets_as_aiortcs_generator(steps: list[int]) -> None:
    ours, theirs = _Nacks(), NackGenerator()
    seq = 65_000  # wraps around
    for step in steps:
        seq = (seq + step) & 0xFFFF
        packet = RtpPacket(sequence_number=seq)
        assert ours.add(seq) == theirs.add(packet)
        assert ours.missing == theirs.missing


@given(
    st.lists(  # (milliseconds since the last packet, its size)
        st.tuples(
            st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=3000)
        ),
        min_size=1,
        max_size=300,
    )
)
def test_the_lean_rate_counter_gives_aiortcs_figures(steps: list[tuple[int, int]]) -> None:
    ours, theirs = LeanRateCounter(1000, 8000), RateCounter(1000, 8000)
    now = 1_000_000
    for gap, size in steps:
        now += gap
        assert ours.rate(now) == theirs.rate(now)
        ours.add(size, now)
        theirs.add(size, now)
    assert ours.rate(now + 1) == theirs.rate(now + 1)
