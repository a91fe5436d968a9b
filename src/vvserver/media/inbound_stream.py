"""One SSRC that a lean receive path (`fast_receive.FastReceive`) receives: what it keeps of
aiortc's receiver per packet (codecs, RTX map, statistics, NACK window, bitrate estimator).

Part of the relay's use of aiortc internals (see `aiortc_hooks`): the receiver's private
attributes read here are listed in `RECEIVER_PRIVATE_ATTRS` and checked at `enable_fast_receive`.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc import clock
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics

from vvserver.media.aiortc_hooks import RECEIVER_BITRATE_ESTIMATOR_ATTR, PacketSink
from vvserver.media.bitrate_estimator import LeanRemoteBitrateEstimator
from vvserver.media.receive_state import LeanRateCounter, _Nacks
from vvserver.media.remb_throttle import RembThrottle
from vvserver.media.srtp_session import NATIVE

RECEIVER = "_RTCRtpReceiver__"
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


class RouteProbe:
    """What aiortc's RTP router reads of a packet."""

    __slots__ = ("payload_type", "ssrc")

    def __init__(self, ssrc: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type


class LeanStreamStatistics(StreamStatistics):
    """aiortc's `StreamStatistics` (what its receiver reports and `getStats` read) with its
    fields in slots, which the C chain updates per packet (_rtp_native.h: SlotCache)."""

    __slots__ = (
        "_clockrate",
        "_expected_prior",
        "_jitter_q4",
        "_last_arrival",
        "_last_timestamp",
        "_received_prior",
        "base_seq",
        "cycles",
        "max_seq",
        "packets_received",
    )


# How often the receiver's active-SSRC time (getSynchronizationSources, a 10 s window) is
# refreshed: aiortc sets a datetime per packet.
ACTIVE_SSRC_REFRESH = 1.0


class InboundStream:
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
        codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, RECEIVER + "codecs")
        self.receiver = receiver
        self.sink = sink
        self.kind: str = getattr(receiver, RECEIVER + "kind")
        self.payload_types = {pt for pt, codec in codecs.items() if not is_rtx_codec(codec)}
        rtx_ssrcs: dict[int, int] = getattr(receiver, RECEIVER + "rtx_ssrc")
        self.original_ssrc = rtx_ssrcs.get(ssrc)
        self.is_rtx: dict[int, int] = {}  # RTX payload type -> the payload type it carries
        for pt, codec in codecs.items():
            apt = codec.parameters.get("apt")
            if is_rtx_codec(codec) and isinstance(apt, int) and apt in codecs:
                self.is_rtx[pt] = apt
        clock_rates = {codec.clockRate for codec in codecs.values()}
        self.clock_rate = max(clock_rates) if clock_rates else 90_000
        streams: dict[int, StreamStatistics] = getattr(receiver, RECEIVER + "remote_streams")
        self.stats = streams.get(ssrc)
        if self.stats is None:
            self.stats = streams[ssrc] = LeanStreamStatistics(self.clock_rate)
        self.active: dict[int, Any] = getattr(receiver, RECEIVER + "active_ssrc")
        self.active[ssrc] = clock.current_datetime()
        self.active_at = time.time()
        self.estimator = lean_estimator(receiver)
        self.remb = RembThrottle()
        self.nacks = _Nacks() if self.kind == "video" else None
        self.abs_send_time_id = abs_send_time_id
        self.frame_bytes = 0
        self.apt = 0


def lean_estimator(receiver: Any) -> Any:
    """The receiver's bitrate estimator, made a lean one (the same REMBs as aiortc's, for less
    CPU; inside cap_receiver_remb's wrapper if wrapped): `_rtp_native.NativeBitrateEstimator`
    (`LeanRemoteBitrateEstimator` in C) where the C extension is in use, else
    `LeanRemoteBitrateEstimator`. An estimator that
    aiortc's own path has already fed (the first packets of a transport whose lean path started
    after DTLS) is replaced too: what it dropped is the first few frames' inter-arrival history,
    which the lean one rebuilds within a second. Called again for the same receiver, it changes
    nothing."""
    estimator = getattr(receiver, RECEIVER_BITRATE_ESTIMATOR_ATTR, None)
    if estimator is None:
        return None
    inner = getattr(estimator, "_estimator", estimator)  # under cap_receiver_remb's wrapper
    lean_type = LeanRemoteBitrateEstimator if NATIVE is None else NATIVE.NativeBitrateEstimator
    if isinstance(inner, (LeanRemoteBitrateEstimator, lean_type)):
        return estimator
    if isinstance(inner, RemoteBitrateEstimator):
        lean = lean_type()
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


def is_rtx_codec(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith("/rtx")
