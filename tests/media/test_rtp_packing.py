"""The relay's senders put on the wire exactly the bytes aiortc's own sender would.

`rtp_packing` and `aiortc_hooks.forward_frames` replace aiortc's per-packet objects (av.Packet,
VpxPayloadDescriptor, RtpPacket) with a few `struct.pack` calls; a browser must not be able to
tell the difference, and NACKed packets must still be retransmitted.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

from vvserver.media.aiortc_hooks import HookError, forward_frames, rtc_configuration
from vvserver.media.rtp_packing import opus_payloads, packetizer, rtp_packets, vp8_payloads

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)


def _extensions_map() -> HeaderExtensionsMap:
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpSendParameters(
            codecs=[VP8],
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ],
        )
    )
    return extensions_map


@pytest.mark.parametrize("size", [1, 1296, 1297, 2592, 5000, 40_000])
def test_vp8_payloads_are_aiortcs_descriptor_and_split(size: int) -> None:
    frame = os.urandom(size)
    for picture_id in (0, 1234, (1 << 15) - 1):
        assert vp8_payloads(frame, picture_id) == Vp8Encoder._packetize(frame, picture_id)


def test_an_opus_packet_is_one_payload_as_it_is() -> None:
    assert opus_payloads(b"\x01\x02\x03", 5) == [b"\x01\x02\x03"]
    assert packetizer("audio/OPUS") is opus_payloads
    assert packetizer("video/vp8") is vp8_payloads
    with pytest.raises(ValueError):
        packetizer("video/H264")


@pytest.mark.parametrize("with_extensions", [True, False])
def test_rtp_packets_serialize_like_aiortcs_rtp_packet(with_extensions: bool) -> None:
    extensions_map = _extensions_map() if with_extensions else HeaderExtensionsMap()
    extensions = HeaderExtensions(mid="1", abs_send_time=0xABCDEF)
    profile, value = extensions_map.set(extensions)
    payloads = vp8_payloads(os.urandom(3000), 42)
    ours = rtp_packets(
        payloads,
        payload_type=96,
        first_sequence_number=65534,  # wraps around inside the frame
        timestamp=0xFFFFFFF0,
        ssrc=0xDEADBEEF,
        extension_profile=profile,
        extension_value=value,
    )
    theirs = []
    for index, payload in enumerate(payloads):
        packet = RtpPacket(
            payload_type=96,
            marker=int(index == len(payloads) - 1),
            sequence_number=(65534 + index) & 0xFFFF,
            timestamp=0xFFFFFFF0,
            ssrc=0xDEADBEEF,
            payload=payload,
        )
        packet.extensions = extensions
        theirs.append(packet.serialize(extensions_map))
    assert ours == theirs


def _private(sender: object, name: str) -> Any:
    return getattr(sender, f"_RTCRtpSender__{name}")


def _set_private(sender: object, name: str, value: object) -> None:
    setattr(sender, f"_RTCRtpSender__{name}", value)


class _SentPackets:
    """Takes the DTLS transport's place under a sender: keeps the RTP bytes it is given."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.packets.append(data)


def _frames(items: list[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    yield from items


async def test_a_forwarding_sender_sends_frames_keeps_rtcp_counters_and_retransmits() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        sender = pc.addTransceiver("video").sender
        keyframe, delta = os.urandom(3000), os.urandom(700)
        frames = _frames([(keyframe, 0), (delta, 3000)])

        async def next_frame() -> tuple[bytes, int]:
            for frame in frames:
                return frame
            raise MediaStreamError

        forward_frames(sender, next_frame)
        wire = _SentPackets()
        sender.setTransport(wire)  # type: ignore[arg-type]
        await asyncio.wait_for(sender._run_rtp(VP8), 5)

        packets = [RtpPacket.parse(data) for data in wire.packets]
        assert len(packets) == 4  # 3 for the keyframe, 1 for the delta frame
        assert [p.marker for p in packets] == [0, 0, 1, 1]
        first = packets[0].sequence_number
        assert [p.sequence_number for p in packets] == [(first + i) & 0xFFFF for i in range(4)]
        assert {p.ssrc for p in packets} == {sender._ssrc}
        assert {p.payload_type for p in packets} == {96}
        assert (packets[3].timestamp - packets[0].timestamp) % (1 << 32) == 3000
        descriptors = [VpxPayloadDescriptor.parse(p.payload) for p in packets]
        assert b"".join(data for _, data in descriptors[:3]) == keyframe
        assert descriptors[3][1] == delta
        assert [d.partition_start for d, _ in descriptors] == [1, 0, 0, 1]
        picture_ids = [d.picture_id for d, _ in descriptors]
        assert picture_ids[3] == ((picture_ids[0] or 0) + 1) % (1 << 15)

        # What the sender's RTCP loop reports, and a NACK answered from the history.
        assert _private(sender, "packet_count") == 4
        assert _private(sender, "octet_count") == sum(len(p.payload) for p in packets)
        assert _private(sender, "rtp_timestamp") == packets[3].timestamp
        await sender._retransmit(packets[1].sequence_number)
        assert wire.packets[-1] == wire.packets[1]
        assert _private(sender, "rtp_exited").is_set()
    finally:
        await pc.close()


async def test_an_audio_sender_sends_one_packet_per_frame_and_keeps_no_history() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        sender = pc.addTransceiver("audio").sender
        frames = _frames([(b"\x78\x01", 0), (b"\x78\x02", 960)])

        async def next_frame() -> tuple[bytes, int]:
            for frame in frames:
                return frame
            raise MediaStreamError

        forward_frames(sender, next_frame)
        wire = _SentPackets()
        sender.setTransport(wire)  # type: ignore[arg-type]
        await asyncio.wait_for(sender._run_rtp(OPUS), 5)
        packets = [RtpPacket.parse(data) for data in wire.packets]
        assert [p.payload for p in packets] == [b"\x78\x01", b"\x78\x02"]
        assert [p.marker for p in packets] == [1, 1]
        assert (packets[1].timestamp - packets[0].timestamp) % (1 << 32) == 960
        await sender._retransmit(packets[0].sequence_number)
        assert len(wire.packets) == 2
    finally:
        await pc.close()


async def test_a_started_sender_cannot_be_redirected() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    sender = pc.addTransceiver("video").sender
    try:
        _set_private(sender, "started", True)

        async def next_frame() -> tuple[bytes, int]:
            raise MediaStreamError

        with pytest.raises(HookError):
            forward_frames(sender, next_frame)
    finally:
        _set_private(sender, "started", False)
        await pc.close()
