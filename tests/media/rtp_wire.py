"""A DTLS transport stand-in under a real RTCRtpSender: keeps the RTP bytes it would encrypt.

`RtpSendPath.send` encrypts with the transport's SRTP session and writes to the nominated ICE
pair's socket; this takes the transport's place with an identity "encryption" and a socket that
keeps what it is given, so forwarding tests read the exact packets a subscriber would get.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.rtp_send_path import RtpSendPath

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)
# VP8 payloads: descriptor (S=1, PID=0 / continuation) + a key frame or delta frame header.
KEYFRAME_START = b"\x10" + b"\x10\x02\x00\x9d\x01\x2a" + bytes(20)
DELTA_START = b"\x10" + b"\x31\x00\x00" + bytes(20)
CONTINUATION = b"\x00" + bytes(30)


def extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
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
    return extensions


class _Socket:
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.backlog = 0  # bytes "queued": over RtpSendPath's bound means a slow subscriber

    def sendto(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog


class _Srtp:
    def protect(self, data: bytes) -> bytes:
        return data

    protect_rtcp = protect


class Wire:
    """Takes an RTCDtlsTransport's place under a sender (connected, no encryption)."""

    def __init__(self) -> None:
        self.socket = _Socket()
        self._state = DtlsState.CONNECTED
        self._tx_srtp = _Srtp()
        self._RTCDtlsTransport__tx_bytes = 0
        self._RTCDtlsTransport__tx_packets = 0
        pair = type("Pair", (), {"protocol": type("P", (), {"transport": self.socket})()})()
        pair.remote_addr = ("127.0.0.1", 9)
        self.transport = type("Ice", (), {})()
        self.transport._connection = type("Connection", (), {"_nominated": {1: pair}})()

    async def _send_rtp(self, data: bytes) -> None:  # what the sender's _retransmit calls
        self.socket.datagrams.append(data)

    @property
    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data, extensions_map()) for data in self.socket.datagrams]


class SendingSender:
    """A real RTCRtpSender with an `RtpSendPath`, started on a `Wire`."""

    def __init__(self, pc: RTCPeerConnection, kind: str) -> None:
        self.sender = pc.addTransceiver(kind).sender
        self.path = RtpSendPath(self.sender)
        self.wire = Wire()
        self._task: asyncio.Task[None] | None = None

    async def start(self, codec: RTCRtpCodecParameters) -> None:
        self.sender.setTransport(self.wire)  # type: ignore[arg-type]
        self.sender._RTCRtpSender__rtp_header_extensions_map = extensions_map()  # type: ignore[attr-defined]
        self.sender._RTCRtpSender__mid = "0"  # type: ignore[attr-defined]
        self._task = asyncio.ensure_future(self.sender._run_rtp(codec))
        for _ in range(10):
            await asyncio.sleep(0)
        assert self.path.started

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def rtp(
    seq: int, timestamp: int, payload: bytes, *, marker: bool = True, ssrc: int = 42
) -> RtpSlice:
    """A received packet as the receive path hands it on (payload type 96 / Opus 111)."""
    return RtpSlice(seq & 0xFFFF, timestamp & 0xFFFFFFFF, marker, ssrc, 96, payload, payload[1:])
