"""The aiortc / aioice internals the relay hooks still exist and behave as assumed.

If aiortc or aioice is upgraded and one of these fails, re-read vvserver/media/aiortc_hooks.py
and the quoted source lines before touching the pin.
"""

from __future__ import annotations

import inspect

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from vvserver.media import aiortc_hooks
from vvserver.media.aiortc_hooks import (
    HookError,
    cap_receiver_remb,
    on_keyframe_request,
    on_remb,
    rtc_configuration,
    set_ice_host_addresses,
    tap_receiver,
)


def test_the_pinned_aiortc_version_is_installed() -> None:
    assert aiortc_hooks.aiortc_version() == aiortc_hooks.PINNED_AIORTC_VERSION


def test_the_receiver_hands_each_packet_to_its_private_jitter_buffer() -> None:
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "packet._data = depayload(codec, packet.payload)" in source
    assert "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in source
    assert "await self._send_rtcp_pli(packet.ssrc)" in source
    init = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__jitter_buffer = JitterBuffer(" in init
    assert "self.__started = False" in init


def test_the_receiver_can_send_a_pli_for_an_ssrc() -> None:
    parameters = list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters)
    assert parameters == ["self", "media_ssrc"]
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli)


def test_a_sender_turns_pli_and_fir_into_a_send_keyframe_call() -> None:
    source = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "RTCP_PSFB_FIR" in source
    assert "RTCP_PSFB_PLI" in source
    assert "self._send_keyframe()" in source
    assert list(inspect.signature(RTCRtpSender._send_keyframe).parameters) == ["self"]


def test_a_sender_packs_av_packets_without_encoding() -> None:
    source = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "payloads, timestamp = self.__encoder.pack(data)" in source


def test_aioice_looks_up_host_addresses_at_gather_time() -> None:
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "addresses = get_host_addresses(" in source
    assert list(inspect.signature(aioice.ice.get_host_addresses).parameters) == [
        "use_ipv4",
        "use_ipv6",
    ]


async def test_hooks_attach_to_a_fresh_transceiver() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendrecv")
        tap_receiver(transceiver.receiver, lambda rtp: False)
        buffer = getattr(transceiver.receiver, aiortc_hooks.RECEIVER_JITTER_BUFFER_ATTR)
        assert type(buffer).__name__ == "_JitterBufferStandIn"

        requests: list[str] = []
        on_keyframe_request(transceiver.sender, lambda: requests.append("pli"))
        transceiver.sender._send_keyframe()
        assert requests == ["pli"]
    finally:
        await pc.close()


async def test_a_started_receiver_cannot_be_tapped() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        receiver = pc.addTransceiver("audio").receiver
        setattr(receiver, aiortc_hooks.RECEIVER_STARTED_ATTR, True)
        with pytest.raises(HookError):
            tap_receiver(receiver, lambda rtp: False)
    finally:
        setattr(receiver, aiortc_hooks.RECEIVER_STARTED_ATTR, False)
        await pc.close()


async def test_configured_host_addresses_become_the_only_host_candidates() -> None:
    set_ice_host_addresses(["127.0.0.1"])
    gatherer = RTCIceGatherer(iceServers=[])
    transport = RTCIceTransport(gatherer)
    try:
        await gatherer.gather()
        hosts = {(c.ip, c.type) for c in gatherer.getLocalCandidates()}
        assert hosts == {("127.0.0.1", "host")}
    finally:
        await transport.stop()


def test_without_configuration_the_interfaces_are_used_and_loopback_is_left_out() -> None:
    set_ice_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    assert aiortc_hooks.ice_host_addresses() is None


def test_the_configuration_never_falls_back_to_a_public_stun_server() -> None:
    assert rtc_configuration([]).iceServers == []


def test_a_video_receiver_sends_remb_from_its_private_bitrate_estimator() -> None:
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "remb = self.__remote_bitrate_estimator.add(" in source
    for keyword in ("abs_send_time=", "arrival_time_ms=", "payload_size=", "ssrc="):
        assert keyword in source  # the capped estimator takes exactly these
    assert "fci=pack_remb_fci(*remb)" in source
    init = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__remote_bitrate_estimator = RemoteBitrateEstimator()" in init


def test_rtcp_reaches_a_sender_through_its_handle_rtcp_packet_method() -> None:
    parameters = list(inspect.signature(RTCRtpSender._handle_rtcp_packet).parameters)
    assert parameters == ["self", "packet"]
    source = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "unpack_remb_fci(packet.fci)" in source
    assert "self._ssrc in ssrcs" in source


async def test_the_remb_a_receiver_sends_is_capped_and_one_a_sender_gets_is_reported() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        video = pc.addTransceiver("video")
        audio = pc.addTransceiver("audio")
        assert cap_receiver_remb(video.receiver, lambda: 200_000)
        assert not cap_receiver_remb(audio.receiver, lambda: 200_000)  # audio has no estimator
        estimator = getattr(video.receiver, aiortc_hooks.RECEIVER_BITRATE_ESTIMATOR_ATTR)
        assert type(estimator).__name__ == "_CappedBitrateEstimator"

        reported: list[int] = []
        on_remb(video.sender, reported.append)
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP,
            ssrc=1,
            media_ssrc=0,
            fci=pack_remb_fci(300_000, [video.sender._ssrc]),
        )
        await video.sender._handle_rtcp_packet(remb)
        assert reported == [300_000]
    finally:
        await pc.close()


def test_a_sender_runs_its_rtp_loop_through_an_overridable_method() -> None:
    send = inspect.getsource(RTCRtpSender.send)
    assert "asyncio.ensure_future(self._run_rtp(parameters.codecs[0]))" in send
    assert list(inspect.signature(RTCRtpSender._run_rtp).parameters) == ["self", "codec"]
    stop = inspect.getsource(RTCRtpSender.stop)
    assert "self.__rtp_started.wait()" in stop
    assert "self.__rtp_exited.wait()" in stop


def test_a_sender_retransmits_from_its_history_and_reports_its_counters() -> None:
    retransmit = inspect.getsource(RTCRtpSender._retransmit)
    assert "self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in retransmit
    assert "packet.sequence_number == sequence_number" in retransmit
    rtcp = inspect.getsource(RTCRtpSender._run_rtcp)
    for counter in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"):
        assert f"self.__{counter}" in rtcp
    assert isinstance(aiortc_hooks.RTP_HISTORY_SIZE, int)
