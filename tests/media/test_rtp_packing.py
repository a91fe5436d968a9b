"""The relay's senders put on the wire exactly the bytes aiortc's own sender would.

`rtp_send_path.RtpSendPath` (the relay's forwarding senders) and `rtp_packing` (the test peers'
pre-packetized clip) replace aiortc's per-packet objects (av.Packet, VpxPayloadDescriptor,
RtpPacket) with a few `struct.pack` calls; a browser must not be able to tell the difference,
and NACKed packets must still be retransmitted.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import (
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

from tests.media.rtp_wire import OPUS, VP8, SendingSender
from vvserver.media.aiortc_hooks import HookError, rtc_configuration
from vvserver.media.rtp_packing import opus_payloads, packetizer, rtp_packets, vp8_payloads
from vvserver.media.rtp_send_path import NOT_SENT, RtpSendPath


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


async def test_a_send_path_puts_aiortcs_bytes_on_the_wire_keeps_counters_and_retransmits() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    sending = SendingSender(pc, "video")
    try:
        await sending.start(VP8)
        payloads = vp8_payloads(os.urandom(3000), 42)
        ntp = 0x1234_5678_9ABC_DEF0
        for index, payload in enumerate(payloads):
            marker = int(index == len(payloads) - 1)
            sending.path.send((65534 + index) & 0xFFFF, 0xFFFFFFF0, marker, payload, ntp)
        extensions = HeaderExtensions(mid="0", abs_send_time=(ntp >> 14) & 0xFFFFFF)
        theirs = []
        for index, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=96,
                marker=int(index == len(payloads) - 1),
                sequence_number=(65534 + index) & 0xFFFF,  # wraps around inside the frame
                timestamp=0xFFFFFFF0,
                ssrc=sending.sender._ssrc,
                payload=payload,
            )
            packet.extensions = extensions
            theirs.append(packet.serialize(_extensions_map()))
        assert sending.wire.socket.datagrams == theirs

        # What the sender's RTCP loop reports, and a NACK answered from the history.
        assert _private(sending.sender, "packet_count") == 3
        assert _private(sending.sender, "octet_count") == sum(map(len, payloads))
        assert _private(sending.sender, "rtp_timestamp") == 0xFFFFFFF0
        assert _private(sending.sender, "ntp_timestamp") == ntp
        await sending.sender._retransmit(65535)
        assert sending.wire.socket.datagrams[-1] == theirs[1]
        await sending.stop()
        assert _private(sending.sender, "rtp_exited").is_set()
        assert not sending.path.started
    finally:
        await pc.close()


async def test_an_audio_send_path_keeps_no_history() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    sending = SendingSender(pc, "audio")
    try:
        await sending.start(OPUS)
        sending.path.send(10, 960, 1, b"\x78\x01", 0)
        assert [p.payload for p in sending.wire.packets] == [b"\x78\x01"]
        assert {p.payload_type for p in sending.wire.packets} == {111}
        await sending.sender._retransmit(10)
        assert len(sending.wire.socket.datagrams) == 1
        await sending.stop()
    finally:
        await pc.close()


async def test_nothing_is_sent_before_the_start_and_a_started_sender_cannot_be_hooked() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    sender = pc.addTransceiver("video").sender
    try:
        path = RtpSendPath(sender)
        assert path.send(1, 2, 1, b"\x10", 0) == NOT_SENT
        _set_private(sender, "started", True)
        with pytest.raises(HookError):
            RtpSendPath(sender)
    finally:
        _set_private(sender, "started", False)
        await pc.close()
