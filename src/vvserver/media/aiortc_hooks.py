"""Every use of aiortc / aioice internals lives in this module and its two siblings:
`rtp_send_path` (item 6 below: sending without a send loop) and `fast_receive` (the lean
receive path: SRTP taken from aioice's connection, decrypted, parsed and routed in place).

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

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioice.ice
import aiortc
import aiortc.rtcrtpsender
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    unpack_remb_fci,
)

if TYPE_CHECKING:
    pass

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
