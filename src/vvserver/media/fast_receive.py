"""The lean receive path: SRTP from the socket to the relay, no per-packet objects or tasks.

Part of the relay's use of aiortc/aioice internals (see `aiortc_hooks`): datagrams are taken
from aioice's connection before its queue, decrypted and parsed (in C when
`vvserver.media._rtp_native` is built), and handed to the tapped receivers' sinks, keeping what
aiortc's `_handle_rtp_packet` keeps that the relay needs.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    clock,
)
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
)

from vvserver.media.aiortc_hooks import (
    RECEIVER_JITTER_BUFFER_ATTR,
    HookError,
    PacketSink,
    RtpSlice,
    _JitterBufferStandIn,
)
from vvserver.media.assembly import OUTAGE_GAP
from vvserver.media.datagram_demux import install_datagram_demux
from vvserver.media.feed_sink import FeedSink
from vvserver.media.frames import EncodedFrame, vp8_descriptor_starts_frame, vp8_is_keyframe
from vvserver.media.inbound_stream import (
    ACTIVE_SSRC_REFRESH,
    RECEIVER,
    RECEIVER_PRIVATE_ATTRS,
    RTX_HEADER_BYTES,
    InboundStream,
    RouteProbe,
)
from vvserver.media.media_flow import SILENCE_AFTER
from vvserver.media.packet_log import MAX_FRAME_BYTES
from vvserver.media.receive_state import ReceiveCounters
from vvserver.media.recorder import RecordingTap
from vvserver.media.rtcp_receive import SrtcpReceiver, is_srtcp
from vvserver.media.rtp_parsing import (
    NTP_EPOCH_OFFSET,
    SEQ_TS_SSRC,
    header_extension,
    vp8_data,
)
from vvserver.media.rtp_send_path import MAX_SEND_BUFFER, send_rtcp_now
from vvserver.media.srtp_session import NATIVE, LeanSrtp, SrtpCalls, srtp_calls

logger = logging.getLogger(__name__)

# The C chain (`_relay_lane.c`): the work of `FastReceive._handle` and of the feed, tracks
# and senders it reaches, per packet, on the same objects; None runs it all in Python.
RELAY = NATIVE
if RELAY is not None:
    RELAY.configure_relay(
        rtp_slice=RtpSlice,
        encoded_frame=EncodedFrame,
        feed_sink=FeedSink,
        dtls_connected=DtlsState.CONNECTED,
        starts_frame=vp8_descriptor_starts_frame,
        is_keyframe=vp8_is_keyframe,
        recording_tap=RecordingTap,
        max_send_buffer=MAX_SEND_BUFFER,
        max_frame_bytes=MAX_FRAME_BYTES,
        silence_after=SILENCE_AFTER,
        outage_gap=OUTAGE_GAP,
    )

# --- receiving: SRTP from the socket to the relay, no per-packet objects or tasks ----------


class FastReceive:
    """The lean receive path of one DTLS transport (one peer connection, max-bundle).

    SRTP packets are taken as the socket delivers them (aioice's `data_received`, before its
    queue and aiortc's receive task), decrypted, parsed with `rtp_parsing` and handed to the
    tapped receiver's sink, all synchronously. Per packet it keeps what the relay needs of
    aiortc's `_handle_rtp_packet`: the receiver's RTCP statistics (the same
    `StreamStatistics` objects its receiver reports and `getStats` read), RTX unwrapping, NACKs
    for missing video packets, and the bitrate estimate (fed once per video frame: the frame's
    bytes at its last packet; aiortc's estimator groups the packets of a 5 ms burst anyway),
    whose REMB goes upstream. SRTCP is handled as it arrives too (`rtcp_receive`); DTLS and STUN
    still go aiortc's way. Malformed or undecryptable packets are dropped and counted.
    """

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_connection",
        "_dtls",
        "_native_context",
        "_queue_datagram",
        "_rtcp",
        "_rx_srtp",
        "_sinks",
        "_streams",
        "counters",
    )

    def __init__(self, dtls: Any) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._queue_datagram: Callable[[bytes, int], None] = self._connection.data_received
        self._streams: dict[int, InboundStream] = {}
        self._sinks: dict[Any, PacketSink] = {}
        self.counters = ReceiveCounters()
        self._rtcp = SrtcpReceiver(dtls, self.counters)
        self._rx_srtp: SrtpCalls | None = None  # on the DTLS transport's session, once it has one
        self._native_context = 0  # its libsrtp context, for the C path (0: Python's path)
        # aioice hands each datagram to its connection's data_received: the C chain's entry
        # (which hands what it does not relay to `_datagram`), or `_datagram`.
        self._connection.data_received = (
            functools.partial(RELAY.relay_datagram, self) if RELAY is not None else self._datagram
        )

    def add_receiver(self, receiver: RTCRtpReceiver, sink: PacketSink) -> None:
        self._sinks[receiver] = sink
        self._streams.clear()  # routes are learnt again

    def _datagram(self, data: bytes, component: int) -> None:
        srtp = self._dtls._rx_srtp
        first = data[0] if data else 0
        if srtp is None or len(data) < 12 or not 127 < first < 192 or 191 < data[1] < 209:
            if srtp is not None and is_srtcp(data) and self._rtcp.ready():
                self._rtcp.receive(data)  # at once, not through aiortc's queue and task
            elif srtp is None or 19 < first < 64 or 127 < first < 192:
                self._queue_datagram(data, component)  # DTLS, RTCP, short ones: aiortc's way
            else:
                self.counters.malformed += 1  # neither DTLS nor SRTP: aiortc drops it too
            return
        dtls = self._dtls
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        lean = self._rx_srtp
        if lean is None or lean.session is not srtp:
            lean = self._rx_srtp = srtp_calls(srtp)
            self._native_context = lean.context if isinstance(lean, LeanSrtp) else 0
        if self._native_context and RELAY is not None:  # the whole chain in C
            RELAY.relay_rtp(self, self._native_context, data)
            return
        if self._native_context and NATIVE is not None:  # unprotect and parse in C
            parsed = NATIVE.unprotect_rtp(self._native_context, data)
            if parsed.__class__ is not int:
                self.counters.packets += 1
                self._handle(*parsed)
            elif parsed == NATIVE.UNDECRYPTABLE:
                self.counters.undecryptable += 1
            else:
                self.counters.packets += 1
                self.counters.malformed += 1
            return
        try:
            packet = lean.unprotect(data)
        except pylibsrtp.Error:
            self.counters.undecryptable += 1
            return
        self._packet(packet)

    def _packet(self, packet: bytes) -> None:
        """Parse a decrypted packet (what `_rtp_native.unprotect_rtp` does in C)."""
        counters = self.counters
        counters.packets += 1
        size = len(packet)
        first = packet[0]
        if first >> 6 != 2 or size < 12:
            counters.malformed += 1
            return
        pos = 12 + (first & 0x0F) * 4
        ext_pos = -1
        if first & 0x10:
            if size < pos + 4:
                counters.malformed += 1
                return
            ext_pos = pos
            pos += 4 + ((packet[pos + 2] << 8) | packet[pos + 3]) * 4
        end = size
        padding = 0
        if first & 0x20:
            padding = packet[-1]
            end = size - padding
            if not padding:
                counters.malformed += 1
                return
        if pos > end:
            counters.malformed += 1
            return
        seq, timestamp, ssrc = SEQ_TS_SSRC.unpack_from(packet, 2)
        self._handle(packet[pos:end], ext_pos, padding, seq, timestamp, ssrc, packet[1], packet)

    def _handle(
        self,
        payload: bytes,
        ext_pos: int,
        padding: int,
        seq: int,
        timestamp: int,
        ssrc: int,
        second: int,
        packet: bytes,
    ) -> None:
        """One well-formed RTP packet: statistics, RTX, NACKs, the estimate, the sink."""
        counters = self.counters
        inbound = self._streams.get(ssrc) or self._route(ssrc, second & 0x7F)
        if inbound is None:
            counters.unrouted += 1
            return
        receiver = inbound.receiver
        if not receiver._enabled:
            return
        now = time.time()  # aiortc's clock for these statistics: its own path may add to them
        payload_type = second & 0x7F
        marker = second >> 7
        # RTCP statistics (aiortc's StreamStatistics.add, for RTX packets too, as aiortc does)
        stats: Any = inbound.stats
        stats.packets_received += 1
        max_seq = stats.max_seq
        if max_seq is None:
            stats.base_seq = stats.max_seq = seq
            stats._last_arrival = int(now * inbound.clock_rate)
            stats._last_timestamp = timestamp
        elif 0 < ((seq - max_seq) & 0xFFFF) < 0x8000:
            if seq < max_seq:
                stats.cycles += 1 << 16
            stats.max_seq = seq
            arrival = int(now * inbound.clock_rate)
            if timestamp != stats._last_timestamp:
                diff = abs((arrival - stats._last_arrival) - (timestamp - stats._last_timestamp))
                stats._jitter_q4 += diff - ((stats._jitter_q4 + 8) >> 4)
            stats._last_arrival = arrival
            stats._last_timestamp = timestamp
        if inbound.estimator is not None:
            inbound.frame_bytes += len(payload) + padding
        if payload_type not in inbound.payload_types:
            apt = inbound.is_rtx.get(payload_type)
            if apt is None or inbound.original_ssrc is None or len(payload) < RTX_HEADER_BYTES:
                counters.unrouted += 1
                return
            # a retransmission: its first two bytes are the original sequence number
            seq = (payload[0] << 8) | payload[1]
            payload = payload[RTX_HEADER_BYTES:]
            payload_type = apt
            ssrc = inbound.original_ssrc
            original = self._streams.get(ssrc)
            if original is not None:
                inbound = original
        if inbound.nacks is not None:
            self._nack_check(inbound, ssrc, seq)
        if marker and inbound.estimator is not None:
            self._estimate(inbound, packet, ext_pos, ssrc, now)
        if not payload:
            counters.malformed += 1  # nothing to forward or record
            return
        if inbound.kind == "video":
            data = vp8_data(payload)
            if data is None:
                counters.malformed += 1
                return
        else:
            data = payload
        rtp = RtpSlice(seq, timestamp, marker == 1, ssrc, payload_type, payload, data)
        try:
            want_keyframe = inbound.sink(rtp)
        except Exception as exc:
            self._sink_failed(exc)
            return
        if want_keyframe:
            self._send_pli(inbound, ssrc)

    def _nack_check(self, inbound: InboundStream, ssrc: int, seq: int) -> None:
        """Note a video packet's sequence number; NACK what it shows missing."""
        nacks = inbound.nacks
        if nacks is not None and nacks.add(seq):
            self._send_nack(inbound, ssrc, sorted(nacks.missing))

    def _sink_failed(self, exc: Exception) -> None:
        # Never let a relay bug kill the receive path of the whole transport.
        logger.error("packet sink failed", exc_info=exc)

    def _route(self, ssrc: int, payload_type: int) -> InboundStream | None:
        receiver = self._dtls._rtp_router.route_rtp(RouteProbe(ssrc, payload_type))
        sink = self._sinks.get(receiver)
        if sink is None or not getattr(receiver, RECEIVER + "codecs"):
            # Not (yet) a receiving stream: aiortc starts its receivers one by one after DTLS
            # is up, so the first packets may come before theirs. Not remembered: asked again.
            return None
        abs_id = self._dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids
        inbound = self._streams[ssrc] = InboundStream(
            receiver, sink, ssrc, abs_id.abs_send_time or 0
        )
        return inbound

    def _estimate(
        self, inbound: InboundStream, packet: bytes, ext_pos: int, ssrc: int, now: float
    ) -> None:
        """Feed the bitrate estimator once per frame; send its REMB upstream."""
        size, inbound.frame_bytes = inbound.frame_bytes, 0
        if now - inbound.active_at >= ACTIVE_SSRC_REFRESH:
            inbound.active_at = now
            inbound.active[ssrc] = clock.current_datetime()
        if NATIVE is not None:  # header_extension's 3-byte value as an int, in C
            abs_send_time = NATIVE.read_abs_send_time(packet, ext_pos, inbound.abs_send_time_id)
            if abs_send_time is None:
                return
        else:
            value = header_extension(packet, ext_pos, inbound.abs_send_time_id)
            if value is None or len(value) != 3:
                return
            abs_send_time = int.from_bytes(value, "big")
        remb = inbound.estimator.add(
            abs_send_time=abs_send_time,
            arrival_time_ms=int((now + NTP_EPOCH_OFFSET) * 1000),  # aiortc's clock.current_ms()
            payload_size=size,
            ssrc=ssrc,
        )
        if remb is None:
            return
        rtcp_ssrc = getattr(inbound.receiver, RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None and inbound.remb.due(remb[0], now):
            send_rtcp_now(
                self._dtls,
                RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                ),
            )

    def _send_nack(self, inbound: InboundStream, ssrc: int, lost: list[int]) -> None:
        rtcp_ssrc = getattr(inbound.receiver, RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None:
            packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=ssrc)
            packet.lost = lost
            self.counters.nacks_sent += 1
            send_rtcp_now(self._dtls, packet)

    def _send_pli(self, inbound: InboundStream, ssrc: int) -> None:
        rtcp_ssrc = getattr(inbound.receiver, RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None:
            send_rtcp_now(
                self._dtls, RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=ssrc)
            )


def enable_fast_receive(pc: RTCPeerConnection) -> list[FastReceive]:
    """Give every tapped receiver of `pc` the lean receive path (`FastReceive`).

    Call once the remote description is applied (the transports are bundled then) and before
    media flows; packets that reach aiortc's own path before that still reach the same sinks.
    """
    install_datagram_demux()
    paths: dict[int, FastReceive] = {}
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        stand_in = getattr(receiver, RECEIVER_JITTER_BUFFER_ATTR, None)
        if not isinstance(stand_in, _JitterBufferStandIn):
            continue  # not tapped: never receives here
        for name in RECEIVER_PRIVATE_ATTRS:
            if not hasattr(receiver, RECEIVER + name):
                raise HookError(f"RTCRtpReceiver has no {RECEIVER + name}")
        dtls = receiver.transport
        path = paths.get(id(dtls))
        if path is None:
            path = getattr(dtls, FAST_RECEIVE_ATTR, None)
            if path is None:
                path = FastReceive(dtls)
                setattr(dtls, FAST_RECEIVE_ATTR, path)
            paths[id(dtls)] = path
        path.add_receiver(receiver, stand_in.sink)
    return list(paths.values())


FAST_RECEIVE_ATTR = "_vvserver_fast_receive"
