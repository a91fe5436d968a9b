"""Types of the C extension built from `_rtp_native.c` (see that file)."""

from collections.abc import Callable
from typing import Any

UNDECRYPTABLE: int
MALFORMED: int
BUFFER_BYTES: int

def set_srtp_functions(protect: int, unprotect: int, /) -> None: ...
def unprotect_rtp(
    ctx: int, datagram: bytes, /
) -> tuple[bytes, int, int, int, int, int, int, bytes] | int: ...

class RtpSender:
    packets_sent: int
    octets_sent: int
    def __init__(
        self,
        sender: Any,
        dtls: Any,
        first_byte: int,
        payload_type: int,
        ssrc: int,
        extension: bytes,
        abs_send_time_at: int,
        history: dict[int, Any] | None,
        history_size: int,
    ) -> None: ...
    def use(
        self,
        session: Any,
        ctx: int,
        sendto: Callable[[bytes, Any], None],
        address: Any,
        pair: Any = ...,
        nominated: dict[int, Any] = ...,
        socket: Any = ...,
        /,
    ) -> None: ...
    def send(
        self, sequence_number: int, timestamp: int, marker: int, payload: bytes, ntp: int, /
    ) -> int: ...

class FrameLane:
    """The packets of a video frame arriving in order, held by the C chain."""

    @property
    def pending(self) -> int: ...
    def take(self) -> list[tuple[Any, float]]: ...

def read_abs_send_time(
    packet: bytes | bytearray | memoryview, ext_pos: int, wanted_id: int, /
) -> int | None: ...

class AimdRateControlState:
    """A NativeBitrateEstimator's rate control (LeanAimdRateControl's fields), read at once."""

    avg_max_bitrate_kbps: float | None
    var_max_bitrate_kbps: float
    current_bitrate: int
    current_bitrate_initialized: bool
    first_estimated_throughput_time: int | None
    last_change_ms: int | None
    near_max: bool
    latest_estimated_throughput: int
    rtt: int
    _state: int

class NativeBitrateEstimator:
    """`bitrate_estimator.LeanRemoteBitrateEstimator` in C (`_bitrate_estimator.c`): the same
    results and state. Ints outside int64's range raise OverflowError."""

    ssrcs: dict[Any, Any]
    incoming_bitrate_initialized: bool
    last_update_ms: int | None
    _e00: float
    _e01: float
    _e10: float
    _e11: float
    _avg_noise: float
    _var_noise: float
    _slope: float
    _offset: float
    _previous_offset: float
    _num_of_deltas: int
    _history: tuple[float, ...]
    _hypothesis: int
    _threshold: float
    _detector_last_update_ms: int | None
    _overuse_counter: int
    _overuse_time: float | None
    _detector_previous_offset: float
    _first_timestamp: int | None
    _last_timestamp: int
    _group_arrival: int
    _group_size: int
    _previous_last_timestamp: int | None
    _previous_arrival: int
    _previous_size: int
    _rate_ms: tuple[int, ...]
    _rate_values: tuple[int, ...]
    _rate_origin_ms: int | None
    _rate_total: int
    def __init__(self) -> None: ...
    @property
    def hypothesis(self) -> Any: ...  # aiortc.rate.BandwidthUsage
    @property
    def rate_control(self) -> AimdRateControlState: ...
    def incoming_bitrate(self, now_ms: int, /) -> int | None: ...
    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: Any
    ) -> tuple[int, list[Any]] | None: ...

def configure_relay(
    *,
    rtp_slice: type,
    encoded_frame: type,
    feed_sink: type,
    dtls_connected: Any,
    starts_frame: Callable[[bytes], bool],
    is_keyframe: Callable[[bytes], bool],
    recording_tap: type,
    max_send_buffer: int,
    max_frame_bytes: int,
    silence_after: float,
    outage_gap: float,
) -> None: ...
def relay_rtp(path: Any, ctx: int, datagram: bytes, /) -> None: ...
def datagram_demux(stun_datagram_received: Callable[..., None], /) -> Any: ...
def relay_datagram(path: Any, datagram: bytes, component: int, /) -> None: ...
