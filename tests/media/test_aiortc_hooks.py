"""The aiortc / aioice internals the relay hooks still exist and behave as assumed.

If aiortc or aioice is upgraded and one of these fails, re-read vvserver/media/aiortc_hooks.py
and the quoted source lines before touching the pin.
"""

from __future__ import annotations

import inspect

import aioice.ice
import aioice.stun
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, HeaderExtensionsMap, RtcpPsfbPacket, pack_remb_fci

from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media import (
    aiortc_hooks,
    datagram_demux,
    inbound_stream,
    receive_state,
    rtp_send_path,
)
from vvserver.media.aiortc_hooks import (
    HookError,
    cap_receiver_remb,
    on_keyframe_request,
    on_remb,
    rtc_configuration,
    set_ice_host_addresses,
    tap_receiver,
)
from vvserver.media.fast_receive import enable_fast_receive
from vvserver.media.room import VisitRoom


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
    assert isinstance(rtp_send_path.RTP_HISTORY_SIZE, int)
    assert receive_state.NACK_HISTORY == rtp_send_path.RTP_HISTORY_SIZE  # NackGenerator's


def test_a_nack_reaches_the_senders_overridable_retransmit_method() -> None:
    source = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "await self._retransmit(seq)" in source
    assert list(inspect.signature(RTCRtpSender._retransmit).parameters) == [
        "self",
        "sequence_number",
    ]
    assert list(inspect.signature(RTCRtpReceiver._send_rtcp_nack).parameters) == [
        "self",
        "media_ssrc",
        "lost",
    ]


def test_aioice_hands_each_datagram_to_its_connections_data_received() -> None:
    # The lean receive path takes SRTP datagrams here, before aioice's queue.
    received = inspect.getsource(datagram_demux.STUN_DATAGRAM_RECEIVED)  # aioice's own
    assert "message = stun.parse_message(data)" in received
    assert "self.receiver.data_received(data, self.local_candidate.component)" in received
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(
        aioice.ice.Connection.data_received
    )
    # ... and sends on the nominated pair's socket, which is all aioice's sendto does.
    sendto = inspect.getsource(aioice.ice.Connection.sendto)
    assert "active_pair = self._nominated.get(component)" in sendto
    assert "await active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data
    )


async def test_media_datagrams_go_to_the_connection_without_a_stun_parse_and_stun_still_does() -> (
    None
):
    datagram_demux.install_datagram_demux()
    handed: list[tuple[bytes, int]] = []

    class Connection:
        def data_received(self, data: bytes, component: int) -> None:
            handed.append((data, component))

        def request_received(self, *args: object) -> None:
            handed.append((b"stun request", 0))

    protocol = aioice.ice.StunProtocol(Connection())  # type: ignore[arg-type]
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    # An RTP packet whose sequence number happens to equal its length - 20: aioice alone would
    # take it for a STUN message.
    rtp = b"\x80\x60\x00\x10" + bytes(32)
    protocol.datagram_received(rtp, ("127.0.0.1", 9))
    dtls = b"\x16\xfe\xfd" + bytes(20)
    protocol.datagram_received(dtls, ("127.0.0.1", 9))
    request = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    protocol.datagram_received(bytes(request), ("127.0.0.1", 9))
    assert handed == [(rtp, 1), (dtls, 1), (b"stun request", 0)]


def test_the_dtls_transport_decrypts_parses_and_routes_rtp_as_the_lean_path_does() -> None:
    recv_next = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:" in recv_next
    assert "data = self._rx_srtp.unprotect(data)" in recv_next
    assert "self.__rx_bytes += len(data)" in recv_next
    assert "self.__rx_packets += 1" in recv_next
    handle = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "RtpPacket.parse(data, self._rtp_header_extensions_map)" in handle
    assert "receiver = self._rtp_router.route_rtp(packet)" in handle
    send = inspect.getsource(RTCDtlsTransport._send_rtp)
    assert "if self._state != State.CONNECTED:" in send
    assert "data = self._tx_srtp.protect(data)" in send
    assert "self.__tx_bytes += len(data)" in send
    assert "self.__tx_packets += 1" in send
    assert "ssrc_receiver = self.ssrc_table.get(packet.ssrc)" in inspect.getsource(
        RtpRouter.route_rtp
    )
    assert "self.__ids.abs_send_time = ext.id" in inspect.getsource(HeaderExtensionsMap.configure)


def test_the_receiver_keeps_what_the_lean_path_updates_in_place() -> None:
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__remote_streams[packet.ssrc].add(packet)" in handle
    assert "if self.__nack_generator is not None and self.__nack_generator.add(packet):" in handle
    assert "remb = self.__remote_bitrate_estimator.add(" in handle
    assert "arrival_time_ms=arrival_time_ms," in handle
    assert "packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)" in handle
    assert "data = self._rx_srtp.unprotect(data)" in inspect.getsource(RTCDtlsTransport._recv_next)
    assert "arrival_time_ms = clock.current_ms()" in inspect.getsource(RTCDtlsTransport._recv_next)
    statistics = inspect.getsource(StreamStatistics.add)
    assert "arrival = int(time.time() * self._clockrate)" in statistics
    assert "self._jitter_q4 += diff - ((self._jitter_q4 + 8) >> 4)" in statistics
    for name in ("base_seq", "max_seq", "cycles", "packets_received"):
        assert f"self.{name}" in inspect.getsource(StreamStatistics.__init__)
    init = inspect.getsource(RTCRtpReceiver.__init__)
    for name in inbound_stream.RECEIVER_PRIVATE_ATTRS:
        assert f"self.__{name}" in init


async def test_malformed_rtp_from_a_connected_peer_is_dropped_and_counted(clip: Clip) -> None:
    room = VisitRoom(120)
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await visitor.wait_connected(within=10)
        await kiosk.wait_connected(within=10)
        await kiosk.received_media("video").wait_for_frames(5, within=10)
        server = room.participant("visitor")
        assert server is not None
        [path] = enable_fast_receive(server.pc)  # already installed: the same path back
        malformed, unrouted = path.counters.malformed, path.counters.unrouted
        video = visitor.sent_track("video").sender_path
        assert video is not None
        pt = bytes([video.payload_type])

        def header(seq: int, payload_type: bytes = pt) -> bytes:
            # on an SSRC of its own: the visitor's stream and its SRTP contexts stay untouched
            return payload_type + seq.to_bytes(2) + bytes(4) + b"\x0b\xad\xf0\x0d"

        bad = [
            b"\x40" + header(1) + b"\x10\x00",  # RTP version 1
            b"\xa0" + header(2) + b"\x10\x00\x00",  # padding of 0 bytes
            b"\x80" + header(3) + b"\x90",  # a VP8 descriptor cut short
            b"\x80" + header(4),  # no payload at all
            b"\x80" + header(5, b"\x7f") + b"\x10\x00",  # a payload type nobody negotiated
        ]
        source = room.feed("visitor", "video").source
        dtls = visitor.pc.getTransceivers()[0].sender.transport
        for packet in bad:
            await dtls._send_rtp(packet)  # encrypted with the real session: authentic
        frames = kiosk.received_media("video").frames
        await kiosk.received_media("video").wait_for_frames(frames + 10, within=5)
        assert path.counters.malformed - malformed == 4
        assert path.counters.unrouted - unrouted == 1
        assert room.feed("visitor", "video").source == source  # nothing reached the feed
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
