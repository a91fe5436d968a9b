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
