"""Every use of aiortc / aioice internals lives in this module.

aiortc has no public API for forwarding encoded media. The relay needs four things from its
internals (aiortc pinned ==1.16.0, aioice 0.x; `tests/media/test_aiortc_hooks.py` fails loudly
when one of them changes):

1. Encoded frames out of a receiver. `RTCRtpReceiver._handle_rtp_packet` depayloads each RTP
   packet (into `packet._data`) and hands it to the private jitter buffer
   (`_RTCRtpReceiver__jitter_buffer.add(packet) -> (pli_flag, frame)`); a returned frame would go
   to the decoder thread. We replace that jitter buffer, before the receiver starts, with an
   adapter that passes each packet to our own frame assembler and never returns a frame, so
   nothing is ever decoded (the idle decoder thread only ever sees its stop sentinel). A returned
   `pli_flag` makes the receiver send a PLI upstream itself.
2. Sending a PLI upstream: the receiver's `_send_rtcp_pli(media_ssrc)` coroutine.
3. Keyframe requests from downstream: an incoming PLI/FIR on a sender only calls
   `sender._send_keyframe()`, which we redirect per sender instance.
4. Congestion (REMB). With no encoder on the server, a REMB a subscriber sends to one of
   our senders only sets the bitrate of an encoder that does not exist; we wrap the sender's
   `_handle_rtcp_packet` to read it. The other way, a video receiver reports its own estimate
   upstream through `_RTCRtpReceiver__remote_bitrate_estimator.add(...) -> (bps, ssrcs)`; we
   wrap that estimator so the REMB it sends is capped at the lowest subscriber's REMB.
5. ICE host addresses: `aioice.ice.get_host_addresses` (looked up at gather time) leaves
   127.0.0.1 out; `set_ice_host_addresses` replaces it so tests and benchmarks stay on loopback.

6. Sending without per-packet objects: `forward_frames` replaces a sender's `_run_rtp` loop
   (started by `send()` as `self._run_rtp(codecs[0])`) with one that pulls encoded frames
   from the relay, builds the RTP bytes itself (`rtp_packing.py`) and passes them to the DTLS
   transport's `_send_rtp`, keeping what the rest of the sender reads: the RTCP SR counters
   (`__ntp_timestamp`, `__rtp_timestamp`, `__packet_count`, `__octet_count`), the NACK
   history `__rtp_history` (only read through `.get()` by `_retransmit`, which re-sends as
   RTX) and the `__rtp_started` / `__rtp_exited` events `stop()` waits on. Without this
   hook, an `RTCRtpSender` whose track's `recv()` returns an `av.Packet` (pts and time_base
   set) packetizes it with `encoder.pack()` without re-encoding, at about twice the cost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioice.ice
import aiortc
import aiortc.rtcrtpsender
import pylibsrtp
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    clock,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensions,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from vvserver.media.bitrate_estimator import LeanRemoteBitrateEstimator
from vvserver.media.remb_throttle import RembThrottle
from vvserver.media.rtp_parsing import (
    EXTENSION_HEADER,
    NTP_EPOCH_OFFSET,
    RTP_HEADER,
    SEQ_TS_SSRC,
    header_extension,
    vp8_data,
)
from vvserver.media.srtp_session import NATIVE, LeanSrtp, SrtpCalls, srtp_calls

if TYPE_CHECKING:
    from vvserver.media._rtp_native import RtpSender

logger = logging.getLogger(__name__)

PINNED_AIORTC_VERSION = "1.16.0"

# Private attribute names (Python name mangling of RTCRtpReceiver.__jitter_buffer etc.).
RECEIVER_JITTER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"
RECEIVER_STARTED_ATTR = "_RTCRtpReceiver__started"
RECEIVER_SEND_PLI_METHOD = "_send_rtcp_pli"
RECEIVER_SEND_NACK_METHOD = "_send_rtcp_nack"
RECEIVER_BITRATE_ESTIMATOR_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
SENDER_KEYFRAME_METHOD = "_send_keyframe"
SENDER_HANDLE_RTCP_METHOD = "_handle_rtcp_packet"
PACKET_DEPAYLOADED_ATTR = "_data"
SENDER_RUN_RTP_METHOD = "_run_rtp"
SENDER_RETRANSMIT_METHOD = "_retransmit"
_SENDER = "_RTCRtpSender__"
SENDER_PRIVATE_ATTRS = (
    "started",
    "rtp_started",
    "rtp_exited",
    "rtp_history",
    "rtp_header_extensions_map",
    "mid",
    "track",
    "encoder",
    "ntp_timestamp",
    "rtp_timestamp",
    "packet_count",
    "octet_count",
)


class HookError(RuntimeError):
    """An aiortc internal the relay relies on is missing or in the wrong state."""


@dataclass(slots=True)
class RtpSlice:
    """One received RTP packet, already depayloaded by aiortc (RTX unwrapped)."""

    sequence_number: int
    timestamp: int
    marker: bool
    ssrc: int
    payload_type: int
    payload: bytes  # the RTP payload as received (VP8: starts with the payload descriptor)
    data: bytes  # the codec bitstream part of the payload


# Returns True when a PLI should be sent upstream for this packet's SSRC.
PacketSink = Callable[[RtpSlice], bool]


class _JitterBufferStandIn:
    """Takes the place of aiortc's JitterBuffer inside one RTCRtpReceiver."""

    def __init__(self, sink: PacketSink) -> None:
        self.sink = sink

    def add(self, packet: Any) -> tuple[bool, None]:
        rtp_slice = RtpSlice(
            packet.sequence_number,
            packet.timestamp,
            packet.marker == 1,
            packet.ssrc,
            packet.payload_type,
            packet.payload,
            packet._data,  # PACKET_DEPAYLOADED_ATTR, read directly: this runs per packet
        )
        try:
            return self.sink(rtp_slice), None
        except Exception:
            # Never let a relay bug kill aiortc's receive loop for the whole transport.
            logger.exception("packet sink failed")
            return False, None


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink) -> None:
    """Route every depayloaded RTP packet of `receiver` to `sink`; nothing gets decoded.

    Must be called before the receiver starts (i.e. before DTLS connects).
    """
    if getattr(receiver, RECEIVER_STARTED_ATTR, None) is not False:
        raise HookError("tap_receiver needs a receiver that has not started yet")
    if not hasattr(receiver, RECEIVER_JITTER_BUFFER_ATTR):
        raise HookError(f"RTCRtpReceiver has no {RECEIVER_JITTER_BUFFER_ATTR}")
    setattr(receiver, RECEIVER_JITTER_BUFFER_ATTR, _JitterBufferStandIn(sink))


def send_pli_upstream(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Ask the remote sender of `media_ssrc` for a keyframe (RTCP PLI)."""
    send: Callable[[int], Awaitable[None]] = getattr(receiver, RECEIVER_SEND_PLI_METHOD)
    return send(media_ssrc)


def send_nack_upstream(
    receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]
) -> Awaitable[None]:
    """Ask the remote sender of `media_ssrc` to retransmit packets (RTCP NACK)."""
    send: Callable[[int, list[int]], Awaitable[None]] = getattr(receiver, RECEIVER_SEND_NACK_METHOD)
    return send(media_ssrc, lost)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` (synchronously, on the event loop) for each PLI/FIR the sender gets."""
    if not callable(getattr(sender, SENDER_KEYFRAME_METHOD, None)):
        raise HookError(f"RTCRtpSender has no {SENDER_KEYFRAME_METHOD}()")
    setattr(sender, SENDER_KEYFRAME_METHOD, callback)


# --- sending: rewritten RTP packets, synchronously, without a send loop -------------------

# The sender's _retransmit looks packets up at `sequence_number % RTP_HISTORY_SIZE`.
RTP_HISTORY_SIZE: int = aiortc.rtcrtpsender.RTP_HISTORY_SIZE  # type: ignore[attr-defined]
_DTLS = "_RTCDtlsTransport__"
_DTLS_CONNECTED = DtlsState.CONNECTED
MAX_SEND_BUFFER = 512 * 1024  # bytes queued in a subscriber's socket: past this it is slow
# What RtpSendPath.send returns.
SENT = 1
NOT_SENT = 0  # not started, disabled, not connected
BACKED_UP = -1  # the subscriber's socket is backed up: a slow subscriber
RTP_HEADER_BITS = 0x80  # version 2, no padding, no extension, no CSRC
RTP_EXTENSION_BIT = 0x10


class _PacketHistory(dict[int, Any]):
    """The sender's NACK history holding packet bytes; `get` parses the one `_retransmit` wants.

    Almost no packet is ever retransmitted, so an RtpPacket per packet sent (aiortc's way) is
    wasted work.
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        super().__init__()
        self._sender = sender

    def get(self, key: int, default: Any = None) -> Any:
        data: bytes | None = dict.get(self, key)
        if data is None:
            return default
        return RtpPacket.parse(data, getattr(self._sender, _SENDER + "rtp_header_extensions_map"))


class _NoFrames(MediaStreamTrack):
    """Never asked for frames: a forwarding sender's packets come from `RtpSendPath.send`."""

    async def recv(self) -> Any:  # pragma: no cover - nothing pulls from it
        raise MediaStreamError


def _dtls_send(dtls: Any, data: bytes, protect: Callable[[bytes], bytes]) -> bool:
    """Encrypt and send one RTP or RTCP packet on `dtls` at once (aiortc's `_send_rtp` and
    aioice's `sendto` are coroutines that never suspend: this is what they do). False when the
    transport is not connected."""
    if dtls._state is not _DTLS_CONNECTED:
        return False
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return False
    data = protect(data)
    pair.protocol.transport.sendto(data, pair.remote_addr)
    dtls._RTCDtlsTransport__tx_bytes += len(data)
    dtls._RTCDtlsTransport__tx_packets += 1
    return True


def send_rtcp_now(dtls: Any, packet: Any) -> None:
    """Send an RTCP packet (an aiortc Rtcp*Packet) on `dtls` at once, if it is connected."""
    if dtls._state is _DTLS_CONNECTED and dtls._tx_srtp is not None:
        _dtls_send(dtls, bytes(packet), dtls._tx_srtp.protect_rtcp)


class RtpSendPath:
    """Makes one RTCRtpSender send the packets it is handed, at once, rewritten for it.

    Replaces the sender's `_run_rtp` loop (per instance, before the sender starts) with one
    that only notes the negotiated codec and waits to be stopped; `send()` then builds each
    packet (the sender's SSRC, payload type and header extensions: mid and abs-send-time,
    aiortc's layout), keeps it in the NACK history, encrypts it and hands it to the socket.
    What the rest of the sender reads is kept: the RTCP sender-report counters, the history
    that `_retransmit` answers NACKs from (RTX when negotiated), the started/exited events
    `stop()` waits on. A NACKed packet that is not in the history is passed to `on_missing`
    (the relay asks the publisher for it).
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        for name in SENDER_PRIVATE_ATTRS:
            if not hasattr(sender, _SENDER + name):
                raise HookError(f"RTCRtpSender has no {_SENDER + name}")
        if getattr(sender, _SENDER + "started") is not False:
            raise HookError("RtpSendPath needs a sender that has not started yet")
        self._sender: Any = sender  # its private counters are set per packet
        self.started = False
        self.on_start: Callable[[], None] | None = None
        self.on_missing: Callable[[int], None] | None = None
        self._history = _PacketHistory(sender)
        self._keep_history = False
        self._payload_type = 0
        self._ssrc = 0
        self._first_byte = RTP_HEADER_BITS
        self._ext_prefix = b""  # the extension block up to the abs-send-time value
        self._ext_suffix = b""  # and after it (padding)
        self._has_abs_send_time = False
        self._last_timestamp = -1
        self._dtls: Any = None
        self._tx_srtp: SrtpCalls | None = None  # on the transport's session, once it has one
        self._pair: Any = None  # the nominated candidate pair last sent on, and its
        self._socket: Any = None  # socket and remote address
        self._remote_addr: tuple[str, int] = ("", 0)
        self._native: RtpSender | None = None  # the C path, on a real SRTP session
        self._packets_sent = 0
        self._octets_sent = 0
        setattr(sender, _SENDER + "rtp_history", self._history)
        setattr(sender, SENDER_RUN_RTP_METHOD, self._run_rtp)
        retransmit: Callable[[int], Awaitable[None]] = getattr(sender, SENDER_RETRANSMIT_METHOD)

        async def retransmit_or_ask(sequence_number: int) -> None:
            kept = dict.get(self._history, sequence_number % RTP_HISTORY_SIZE)
            if kept is not None and SEQ_TS_SSRC.unpack_from(kept, 2)[0] == sequence_number:
                await retransmit(sequence_number)
            elif self.on_missing is not None:
                self.on_missing(sequence_number)

        setattr(sender, SENDER_RETRANSMIT_METHOD, retransmit_or_ask)

    @property
    def payload_type(self) -> int:
        """The negotiated payload type (once started)."""
        return self._payload_type

    @property
    def packets_sent(self) -> int:
        native = self._native
        return self._packets_sent + (native.packets_sent if native is not None else 0)

    @property
    def octets_sent(self) -> int:
        native = self._native
        return self._octets_sent + (native.octets_sent if native is not None else 0)

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        sender = self._sender
        getattr(sender, _SENDER + "rtp_started").set()
        try:
            if codec.payloadType is None:
                raise HookError("the sender's codec has no payload type")
            self._payload_type = codec.payloadType
            self._keep_history = codec.mimeType.lower().startswith("video/")  # only video is NACKed
            self._ssrc = sender._ssrc
            self._dtls = sender.transport
            self._set_extensions(getattr(sender, _SENDER + "rtp_header_extensions_map"))
            self.started = True
            if self.on_start is not None:
                self.on_start()
            await asyncio.get_running_loop().create_future()  # until stop() cancels it
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            # stop() waits for rtp_exited: never leave without setting it.
            logger.exception("a forwarding sender failed to start")
        self.started = False
        track = getattr(sender, _SENDER + "track")
        if track is not None:
            track.stop()
            setattr(sender, _SENDER + "track", None)
        setattr(sender, _SENDER + "encoder", None)
        getattr(sender, _SENDER + "rtp_exited").set()

    def _set_extensions(self, extensions_map: Any) -> None:
        """aiortc's extension block (mid, abs-send-time), split where abs-send-time goes."""
        mid = getattr(self._sender, _SENDER + "mid")
        low = extensions_map.set(HeaderExtensions(mid=mid, abs_send_time=0))
        high = extensions_map.set(HeaderExtensions(mid=mid, abs_send_time=0xFFFFFF))
        profile, value = low
        if not value:
            self._first_byte = RTP_HEADER_BITS
            return
        self._first_byte = RTP_HEADER_BITS | RTP_EXTENSION_BIT
        block = EXTENSION_HEADER.pack(profile, len(value) >> 2) + value
        differing = [i for i, (a, b) in enumerate(zip(value, high[1], strict=True)) if a != b]
        if len(differing) == 3 and differing[2] - differing[0] == 2:
            at = 4 + differing[0]
            self._ext_prefix, self._ext_suffix = block[:at], block[at + 3 :]
            self._has_abs_send_time = True
        else:
            self._ext_prefix, self._ext_suffix = block, b""

    def send(
        self, sequence_number: int, timestamp: int, marker: int, payload: bytes, ntp: int
    ) -> int:
        """Send one packet now: SENT, NOT_SENT (not started, disabled or not connected) or
        BACKED_UP (the socket's buffer is over MAX_SEND_BUFFER: a slow subscriber)."""
        if not self.started or not self._sender._enabled:
            return NOT_SENT
        dtls = self._dtls
        if dtls._state is not _DTLS_CONNECTED:
            return NOT_SENT
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return NOT_SENT
        lean = self._tx_srtp
        if pair is not self._pair or lean is None or lean.session is not dtls._tx_srtp:
            lean = self._use(pair, dtls._tx_srtp)
        socket = self._socket
        if socket.get_write_buffer_size() > MAX_SEND_BUFFER:
            return BACKED_UP
        native = self._native
        if native is not None:  # the steps below, in C (_rtp_native.c)
            native.send(sequence_number, timestamp, marker, payload, ntp)
            return SENT
        if self._has_abs_send_time:
            extension = (
                self._ext_prefix + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + self._ext_suffix
            )
        else:
            extension = self._ext_prefix
        packet = (
            RTP_HEADER.pack(
                self._first_byte,
                (0x80 if marker else 0) | self._payload_type,
                sequence_number,
                timestamp,
                self._ssrc,
            )
            + extension
            + payload
        )
        if self._keep_history:
            self._history[sequence_number % RTP_HISTORY_SIZE] = packet
        data = lean.protect(packet)
        socket.sendto(data, self._remote_addr)
        dtls._RTCDtlsTransport__tx_bytes += len(data)
        dtls._RTCDtlsTransport__tx_packets += 1
        sender = self._sender
        self._packets_sent += 1
        self._octets_sent += len(payload)
        sender._RTCRtpSender__packet_count = self._packets_sent
        sender._RTCRtpSender__octet_count = self._octets_sent
        if timestamp != self._last_timestamp:
            # What the sender's RTCP loop puts in its sender reports: a matching pair.
            self._last_timestamp = timestamp
            sender._RTCRtpSender__ntp_timestamp = ntp
            sender._RTCRtpSender__rtp_timestamp = timestamp
        return SENT

    def _use(self, pair: Any, session: Any) -> SrtpCalls:
        """Send on `pair` (the nominated pair: a new one after an ICE change) with the
        transport's SRTP `session` (a new one after a DTLS restart); in C when it can."""
        self._pair = pair
        self._socket = pair.protocol.transport
        self._remote_addr = pair.remote_addr  # a property building a tuple each time
        lean = self._tx_srtp = srtp_calls(session)
        if NATIVE is None or not isinstance(lean, LeanSrtp):
            self._native = None  # a test's stand-in session: Python's steps
            return lean
        if self._native is None:
            prefix, suffix = self._ext_prefix, self._ext_suffix
            extension = prefix + (bytes(3) + suffix if self._has_abs_send_time else b"")
            self._native = NATIVE.RtpSender(
                sender=self._sender,
                dtls=self._dtls,
                first_byte=self._first_byte,
                payload_type=self._payload_type,
                ssrc=self._ssrc,
                extension=extension,
                abs_send_time_at=len(prefix) if self._has_abs_send_time else -1,
                history=self._history if self._keep_history else None,
                history_size=RTP_HISTORY_SIZE,
            )
        self._native.use(session, lean.context, self._socket.sendto, self._remote_addr)
        return lean


def track_for_sending(kind: str) -> MediaStreamTrack:
    """A track for a sender whose packets come from an `RtpSendPath` (never pulled)."""
    track = _NoFrames()
    track.kind = kind
    return track


# --- receiving: SRTP from the socket to the relay, no per-packet objects or tasks ----------

_RECEIVER = "_RTCRtpReceiver__"
RECEIVER_PRIVATE_ATTRS = (
    "kind",
    "codecs",
    "rtx_ssrc",
    "remote_streams",
    "active_ssrc",
    "rtcp_ssrc",
    "remote_bitrate_estimator",
)
RTX_HEADER_BYTES = 2
NACK_HISTORY = RTP_HISTORY_SIZE  # missing packets tracked at most (aiortc's NackGenerator)


@dataclass(slots=True)
class ReceiveCounters:
    """What a lean receive path dropped (for tests and metrics)."""

    packets: int = 0
    malformed: int = 0  # not RTP, or cut short
    undecryptable: int = 0  # SRTP authentication or replay check failed
    unrouted: int = 0  # no receiver for its SSRC / payload type
    nacks_sent: int = 0  # RTCP NACKs sent for missing packets


class _RouteProbe:
    """What aiortc's RTP router reads of a packet."""

    __slots__ = ("payload_type", "ssrc")

    def __init__(self, ssrc: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type


class _Nacks:
    """aiortc's NackGenerator, with the usual case (the next packet) in one comparison."""

    __slots__ = ("max_seq", "missing")

    def __init__(self) -> None:
        self.max_seq = -1
        self.missing: set[int] = set()

    def add(self, seq: int) -> bool:
        """Note a received packet; True when it revealed newly missing packets."""
        if self.max_seq < 0:
            self.max_seq = seq
            return False
        ahead = (seq - self.max_seq) & 0xFFFF
        if ahead == 1:
            self.max_seq = seq
            if self.missing:
                self._truncate()
            return False
        if 0 < ahead < 0x8000:
            for back in range(min(ahead - 1, NACK_HISTORY), 0, -1):
                self.missing.add((seq - back) & 0xFFFF)
            self.max_seq = seq
            self._truncate()
            return True
        self.missing.discard(seq)
        return False

    def _truncate(self) -> None:
        oldest = (self.max_seq - NACK_HISTORY) & 0xFFFF
        for seq in [s for s in self.missing if 0 < ((oldest - s) & 0xFFFF) < 0x8000]:
            self.missing.discard(seq)


# How often the receiver's active-SSRC time (getSynchronizationSources, a 10 s window) is
# refreshed: aiortc sets a datetime per packet.
ACTIVE_SSRC_REFRESH = 1.0


class _Inbound:
    """One receiver's handling of one SSRC: what aiortc's `_handle_rtp_packet` does that the
    relay needs, and no more."""

    __slots__ = (
        "abs_send_time_id",
        "active",
        "active_at",
        "apt",
        "clock_rate",
        "estimator",
        "frame_bytes",
        "is_rtx",
        "kind",
        "nacks",
        "original_ssrc",
        "payload_types",
        "receiver",
        "remb",
        "sink",
        "stats",
    )

    def __init__(self, receiver: Any, sink: PacketSink, ssrc: int, abs_send_time_id: int) -> None:
        codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _RECEIVER + "codecs")
        self.receiver = receiver
        self.sink = sink
        self.kind: str = getattr(receiver, _RECEIVER + "kind")
        self.payload_types = {pt for pt, codec in codecs.items() if not _is_rtx(codec)}
        rtx_ssrcs: dict[int, int] = getattr(receiver, _RECEIVER + "rtx_ssrc")
        self.original_ssrc = rtx_ssrcs.get(ssrc)
        self.is_rtx: dict[int, int] = {}  # RTX payload type -> the payload type it carries
        for pt, codec in codecs.items():
            apt = codec.parameters.get("apt")
            if _is_rtx(codec) and isinstance(apt, int) and apt in codecs:
                self.is_rtx[pt] = apt
        clock_rates = {codec.clockRate for codec in codecs.values()}
        self.clock_rate = max(clock_rates) if clock_rates else 90_000
        streams: dict[int, StreamStatistics] = getattr(receiver, _RECEIVER + "remote_streams")
        self.stats = streams.get(ssrc)
        if self.stats is None:
            self.stats = streams[ssrc] = StreamStatistics(self.clock_rate)
        self.active: dict[int, Any] = getattr(receiver, _RECEIVER + "active_ssrc")
        self.active[ssrc] = clock.current_datetime()
        self.active_at = time.time()
        self.estimator = _lean_estimator(receiver)
        self.remb = RembThrottle()
        self.nacks = _Nacks() if self.kind == "video" else None
        self.abs_send_time_id = abs_send_time_id
        self.frame_bytes = 0
        self.apt = 0


class LeanRateCounter:
    """aiortc's `RateCounter` (1 ms buckets over a window), with the same figures: it keeps
    only the milliseconds that had data, so catching up after a quiet spell is one step
    instead of one per millisecond (aiortc's `_erase_old` walks every bucket)."""

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._entries: deque[tuple[int, int]] = deque()
        self._origin_ms: int | None = None
        self._count = 0
        self._value = 0

    def _erase_old(self, now_ms: int) -> None:
        new_origin_ms = now_ms - self._window_size + 1
        assert self._origin_ms is not None
        if self._origin_ms < new_origin_ms:
            entries = self._entries
            while entries and entries[0][0] < new_origin_ms:
                _, value = entries.popleft()
                self._count -= 1
                self._value -= value
            self._origin_ms = new_origin_ms

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        self._entries.append((now_ms, value))
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None


def _lean_estimator(receiver: Any) -> Any:
    """The receiver's bitrate estimator, made a `LeanRemoteBitrateEstimator` (the same REMBs as
    aiortc's, for less CPU; inside cap_receiver_remb's wrapper if wrapped). An estimator that
    aiortc's own path has already fed (the first packets of a transport whose lean path started
    after DTLS) is replaced too: what it dropped is the first few frames' inter-arrival history,
    which the lean one rebuilds within a second. Called again for the same receiver, it changes
    nothing."""
    estimator = getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR, None)
    if estimator is None:
        return None
    inner = getattr(estimator, "_estimator", estimator)  # under cap_receiver_remb's wrapper
    if isinstance(inner, LeanRemoteBitrateEstimator):
        return estimator
    if isinstance(inner, RemoteBitrateEstimator):
        lean = LeanRemoteBitrateEstimator()
        if inner is estimator:
            setattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR, lean)
            return lean
        estimator._estimator = lean
        return estimator
    counter = getattr(inner, ESTIMATOR_RATE_COUNTER_ATTR, None)
    if counter is not None and not isinstance(counter, LeanRateCounter):
        lean_counter = LeanRateCounter(counter._window_size, counter._scale)
        setattr(inner, ESTIMATOR_RATE_COUNTER_ATTR, lean_counter)
    return estimator


ESTIMATOR_RATE_COUNTER_ATTR = "incoming_bitrate"


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


class FastReceive:
    """The lean receive path of one DTLS transport (one peer connection, max-bundle).

    SRTP packets are taken as the socket delivers them (aioice's `data_received`, before its
    queue and aiortc's receive task), decrypted, parsed with `rtp_parsing` and handed to the
    tapped receiver's sink, all synchronously. Per packet it keeps what the relay needs of
    aiortc's `_handle_rtp_packet`: the receiver's RTCP statistics (the same
    `StreamStatistics` objects its receiver reports and `getStats` read), RTX unwrapping, NACKs
    for missing video packets, and the bitrate estimate (fed once per video frame: the frame's
    bytes at its last packet; aiortc's estimator groups the packets of a 5 ms burst anyway),
    whose REMB goes upstream. RTCP, DTLS and STUN still go aiortc's way. Malformed or
    undecryptable packets are dropped and counted.
    """

    def __init__(self, dtls: Any) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._queue_datagram: Callable[[bytes, int], None] = self._connection.data_received
        self._streams: dict[int, _Inbound] = {}
        self._sinks: dict[Any, PacketSink] = {}
        self.counters = ReceiveCounters()
        self._rx_srtp: SrtpCalls | None = None  # on the DTLS transport's session, once it has one
        self._native_context = 0  # its libsrtp context, for the C path (0: Python's path)
        self._connection.data_received = self._datagram

    def add_receiver(self, receiver: RTCRtpReceiver, sink: PacketSink) -> None:
        self._sinks[receiver] = sink
        self._streams.clear()  # routes are learnt again

    def _datagram(self, data: bytes, component: int) -> None:
        srtp = self._dtls._rx_srtp
        first = data[0] if data else 0
        if srtp is None or len(data) < 12 or not 127 < first < 192 or 191 < data[1] < 209:
            if srtp is None or 19 < first < 64 or 127 < first < 192:
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
        nacks = inbound.nacks
        if nacks is not None and nacks.add(seq):
            self._send_nack(inbound, ssrc, sorted(nacks.missing))
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
        except Exception:
            # Never let a relay bug kill the receive path of the whole transport.
            logger.exception("packet sink failed")
            return
        if want_keyframe:
            self._send_pli(inbound, ssrc)

    def _route(self, ssrc: int, payload_type: int) -> _Inbound | None:
        receiver = self._dtls._rtp_router.route_rtp(_RouteProbe(ssrc, payload_type))
        sink = self._sinks.get(receiver)
        if sink is None or not getattr(receiver, _RECEIVER + "codecs"):
            # Not (yet) a receiving stream: aiortc starts its receivers one by one after DTLS
            # is up, so the first packets may come before theirs. Not remembered: asked again.
            return None
        abs_id = self._dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids
        inbound = self._streams[ssrc] = _Inbound(receiver, sink, ssrc, abs_id.abs_send_time or 0)
        return inbound

    def _estimate(
        self, inbound: _Inbound, packet: bytes, ext_pos: int, ssrc: int, now: float
    ) -> None:
        """Feed the bitrate estimator once per frame; send its REMB upstream."""
        size, inbound.frame_bytes = inbound.frame_bytes, 0
        if now - inbound.active_at >= ACTIVE_SSRC_REFRESH:
            inbound.active_at = now
            inbound.active[ssrc] = clock.current_datetime()
        value = header_extension(packet, ext_pos, inbound.abs_send_time_id)
        if value is None or len(value) != 3:
            return
        remb = inbound.estimator.add(
            abs_send_time=int.from_bytes(value, "big"),
            arrival_time_ms=int((now + NTP_EPOCH_OFFSET) * 1000),  # aiortc's clock.current_ms()
            payload_size=size,
            ssrc=ssrc,
        )
        if remb is None:
            return
        rtcp_ssrc = getattr(inbound.receiver, _RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None and inbound.remb.due(remb[0], now):
            send_rtcp_now(
                self._dtls,
                RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                ),
            )

    def _send_nack(self, inbound: _Inbound, ssrc: int, lost: list[int]) -> None:
        rtcp_ssrc = getattr(inbound.receiver, _RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None:
            packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=ssrc)
            packet.lost = lost
            self.counters.nacks_sent += 1
            send_rtcp_now(self._dtls, packet)

    def _send_pli(self, inbound: _Inbound, ssrc: int) -> None:
        rtcp_ssrc = getattr(inbound.receiver, _RECEIVER + "rtcp_ssrc")
        if rtcp_ssrc is not None:
            send_rtcp_now(
                self._dtls, RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=ssrc)
            )


_STUN_DATAGRAM_RECEIVED = aioice.ice.StunProtocol.datagram_received


def _demux_datagram(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
    """aioice's `StunProtocol.datagram_received`, demultiplexing by the first byte first
    (RFC 7983): RTP and RTCP (128-191) go straight to the connection's `data_received`.
    aioice tries to parse every datagram as STUN and takes the `ValueError` as "not STUN":
    an exception raised and caught per media packet."""
    if data and 127 < data[0] < 192:
        self.receiver.data_received(data, self.local_candidate.component)
    else:
        _STUN_DATAGRAM_RECEIVED(self, data, addr)


def install_datagram_demux() -> None:
    """Make every aioice socket protocol demultiplex as `_demux_datagram` does (idempotent)."""
    aioice.ice.StunProtocol.datagram_received = _demux_datagram  # type: ignore[method-assign,assignment]


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
            if not hasattr(receiver, _RECEIVER + name):
                raise HookError(f"RTCRtpReceiver has no {_RECEIVER + name}")
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

# --- congestion: REMB ---------------------------------------------------------------------


class _CappedBitrateEstimator:
    """Wraps a receiver's RemoteBitrateEstimator: its REMB never exceeds `cap()`."""

    def __init__(self, estimator: Any, cap: Callable[[], int | None]) -> None:
        self._estimator = estimator
        self._cap = cap
        self.last_estimate: int | None = None

    def add(
        self, *, abs_send_time: int, arrival_time_ms: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        # Called for every video packet received: no **kwargs repacking.
        result = self._estimator.add(
            abs_send_time=abs_send_time,
            arrival_time_ms=arrival_time_ms,
            payload_size=payload_size,
            ssrc=ssrc,
        )
        if result is None:
            return None
        bitrate, ssrcs = result
        self.last_estimate = int(bitrate)
        limit = self._cap()
        return (self.last_estimate if limit is None else min(self.last_estimate, limit)), ssrcs


def cap_receiver_remb(receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> bool:
    """Cap the REMB a video receiver sends upstream at `cap()` bps (None: no cap).

    Returns False for receivers without an estimator (audio). Call before the receiver starts.
    """
    estimator = getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR, None)
    if estimator is None:
        return False
    setattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR, _CappedBitrateEstimator(estimator, cap))
    return True


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bps)` for each REMB the sender's remote receiver sends about it."""
    handle: Callable[[Any], Awaitable[None]] = getattr(sender, SENDER_HANDLE_RTCP_METHOD)

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if sender._ssrc in ssrcs:
                callback(int(bitrate))
        await handle(packet)

    setattr(sender, SENDER_HANDLE_RTCP_METHOD, handle_rtcp_packet)


# --- ICE ------------------------------------------------------------------------------------

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_configured_host_addresses: tuple[str, ...] | None = None


def _configured_get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _configured_host_addresses is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    return [
        address
        for address in _configured_host_addresses
        if (use_ipv6 if ":" in address else use_ipv4)
    ]


def set_ice_host_addresses(addresses: Sequence[str] | None) -> None:
    """Use exactly `addresses` as ICE host candidates (process-wide); None: the interfaces.

    aioice leaves 127.0.0.1 out of its host candidates, so loopback-only tests need this.
    """
    global _configured_host_addresses
    _configured_host_addresses = None if addresses is None else tuple(addresses)
    aioice.ice.get_host_addresses = _configured_get_host_addresses


def ice_host_addresses() -> list[str] | None:
    """The configured ICE host addresses, or None when the machine's interfaces are used."""
    return None if _configured_host_addresses is None else list(_configured_host_addresses)


def rtc_configuration(
    ice_servers: Sequence[RTCIceServer], *, relay_only: bool = False
) -> RTCConfiguration:
    """An RTCConfiguration with explicit ICE servers and max-bundle.

    aiortc's default (iceServers=None) is a public Google STUN server: never rely on it.
    With its default "balanced" bundle policy, transceivers created before the offer is set
    share one transport per kind, and applying a BUNDLE offer with two sections of one kind
    (a monitor's) stops the transport the second one still uses: max-bundle avoids that.
    `relay_only`: TURN candidates alone (``iceTransportPolicy: "relay"``), with the TURN
    entries of `ice_servers` (their ``turn:``/``turns:`` URLs).
    """
    if not relay_only:
        return RTCConfiguration(
            iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
    return RTCConfiguration(
        iceServers=turn_servers_of(ice_servers),
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )


def turn_servers_of(ice_servers: Sequence[RTCIceServer]) -> list[RTCIceServer]:
    """The TURN entries of `ice_servers`, each with its ``turn:``/``turns:`` URLs only."""
    servers: list[RTCIceServer] = []
    for server in ice_servers:
        urls = [server.urls] if isinstance(server.urls, str) else list(server.urls)
        turn = [url for url in urls if url.lower().startswith(("turn:", "turns:"))]
        if turn:
            servers.append(
                RTCIceServer(urls=turn, username=server.username, credential=server.credential)
            )
    return servers


def aiortc_version() -> str:
    return str(aiortc.__version__)
