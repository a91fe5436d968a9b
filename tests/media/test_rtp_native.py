"""The relay's C steps give what its Python steps give: the same bytes out, the same packets in.

`_rtp_native` (built by `pip install` from `src/vvserver/media/_rtp_native.c`) does the byte
work of `RtpSendPath.send` and of the lean receive path's SRTP and header parsing; Python's
steps stay as the fallback (`VV_MEDIA_NATIVE=0`). Each test here runs a real libsrtp session.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from tests.media.rtp_wire import OPUS, VP8, SendingSender
from vvserver.media import _rtp_native as native
from vvserver.media import fast_receive, rtp_send_path, srtp_session
from vvserver.media.rtp_send_path import SENT
from vvserver.media.srtp_session import LeanSrtp, srtp_context

KEY = bytes(range(30))


def session(direction: int) -> Session:
    return Session(policy=Policy(key=KEY, ssrc_type=direction))


def test_the_extension_is_built_and_in_use() -> None:
    assert srtp_session.NATIVE is native
    assert vars(rtp_send_path)["NATIVE"] is native
    assert vars(fast_receive)["NATIVE"] is native


async def _sent_by_a_sender(
    monkeypatch: pytest.MonkeyPatch, *, use_native: bool, kind: str
) -> tuple[list[bytes], dict[int, Any], tuple[int, int, int, int], tuple[int, int]]:
    """What a real RTCRtpSender's RtpSendPath puts on the wire (and keeps, and counts) for a
    fixed run of packets, sending through a real SRTP session."""
    from aiortc import RTCPeerConnection

    monkeypatch.setattr(rtp_send_path, "NATIVE", native if use_native else None)
    pc = RTCPeerConnection()
    sending = SendingSender(pc, kind)
    sending.sender._ssrc = 0x01020304
    sending.wire._tx_srtp = session(Policy.SSRC_ANY_OUTBOUND)  # type: ignore[assignment]
    try:
        await sending.start(VP8 if kind == "video" else OPUS)
        path = sending.path
        for i in range(40):
            payload = bytes([0x10 if i % 5 == 0 else 0x00]) + bytes(b % 256 for b in range(i * 7))
            ntp = 0xE000_0000_0000_0000 + i * 0x0123_4567
            result = path.send(
                (65530 + i) & 0xFFFF,
                (4_294_960_000 + i // 3 * 3000) & 0xFFFFFFFF,
                i % 3 == 2,
                payload,
                ntp,
            )
            assert result == SENT
        assert (path._native is not None) == use_native
        sender: Any = sending.sender
        counters = (
            sender._RTCRtpSender__packet_count,
            sender._RTCRtpSender__octet_count,
            sender._RTCRtpSender__ntp_timestamp,
            sender._RTCRtpSender__rtp_timestamp,
        )
        wire: Any = sending.wire
        tx = (wire._RTCDtlsTransport__tx_bytes, wire._RTCDtlsTransport__tx_packets)
        return list(sending.wire.socket.datagrams), dict(path._history), counters, tx
    finally:
        await sending.stop()
        await pc.close()


@pytest.mark.parametrize("kind", ["video", "audio"])
async def test_a_sender_puts_the_same_bytes_on_the_wire_in_c_as_in_python(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    in_python = await _sent_by_a_sender(monkeypatch, use_native=False, kind=kind)
    in_c = await _sent_by_a_sender(monkeypatch, use_native=True, kind=kind)
    assert in_c == in_python
    datagrams, history, (packets, octets, _, _), (tx_bytes, tx_packets) = in_c
    assert packets == tx_packets == len(datagrams) == 40
    assert tx_bytes == sum(len(d) for d in datagrams)
    assert octets == sum(len(range(i * 7)) + 1 for i in range(40))
    assert (len(history) > 0) == (kind == "video")  # only video is NACKed
    receiver = LeanSrtp(session(Policy.SSRC_ANY_INBOUND))
    plain = [receiver.unprotect(d) for d in datagrams]
    assert [struct.unpack_from("!H", p, 2)[0] for p in plain[:7]] == [
        65530,
        65531,
        65532,
        65533,
        65534,
        65535,
        0,
    ]
    if kind == "video":
        assert set(history.values()) <= set(plain)


def _reference_parse(packet: bytes) -> tuple[Any, ...] | int:
    """RFC 3550 section 5.1 read plainly: what the lean path needs of a decrypted packet."""
    size = len(packet)
    if size < 12 or packet[0] >> 6 != 2:
        return native.MALFORMED
    first = packet[0]
    pos = 12 + 4 * (first & 0x0F)
    ext_pos = -1
    if first & 0x10:
        if size < pos + 4:
            return native.MALFORMED
        ext_pos = pos
        pos += 4 + 4 * struct.unpack_from("!H", packet, pos + 2)[0]
    padding = packet[-1] if first & 0x20 else 0
    if first & 0x20 and padding == 0:
        return native.MALFORMED
    end = size - padding
    if pos > end:
        return native.MALFORMED
    seq, timestamp, ssrc = struct.unpack_from("!HII", packet, 2)
    return (packet[pos:end], ext_pos, padding, seq, timestamp, ssrc, packet[1], packet)


rtp_packets = st.builds(
    lambda csrc, ext_words, pad, marker_pt, seq, ts, ssrc, payload, pad_byte: (
        bytes(
            [0x80 | (0x20 if pad else 0) | (0x10 if ext_words is not None else 0) | csrc, marker_pt]
        )
        + struct.pack("!HII", seq, ts, ssrc)
        + bytes(4 * csrc)
        + (
            b""
            if ext_words is None
            else struct.pack("!HH", 0xBEDE, ext_words) + bytes(4 * ext_words)
        )
        + payload
        + (bytes([pad_byte]) if pad else b"")
    ),
    csrc=st.integers(0, 15),
    ext_words=st.none() | st.integers(0, 20),
    pad=st.booleans(),
    marker_pt=st.integers(0, 255),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=1200),
    pad_byte=st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(packet=rtp_packets)
def test_unprotect_and_parse_in_c_reads_each_packet_as_the_rfc_says(packet: bytes) -> None:
    sender = LeanSrtp(session(Policy.SSRC_ANY_OUTBOUND))
    receiver = session(Policy.SSRC_ANY_INBOUND)
    protected = sender.protect(packet)
    assert native.unprotect_rtp(srtp_context(receiver), protected) == _reference_parse(packet)


def test_a_tampered_replayed_short_or_oversized_datagram_is_undecryptable() -> None:
    sender = LeanSrtp(session(Policy.SSRC_ANY_OUTBOUND))
    receiver = session(Policy.SSRC_ANY_INBOUND)
    context = srtp_context(receiver)
    packet = struct.pack("!BBHII", 0x80, 96, 1, 3000, 7) + b"x" * 100
    protected = sender.protect(packet)
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    assert native.unprotect_rtp(context, tampered) == native.UNDECRYPTABLE
    parsed = native.unprotect_rtp(context, protected)
    assert isinstance(parsed, tuple)
    assert parsed[0] == b"x" * 100
    assert native.unprotect_rtp(context, protected) == native.UNDECRYPTABLE  # a replay
    assert native.unprotect_rtp(context, protected[:11]) == native.UNDECRYPTABLE
    assert native.unprotect_rtp(context, bytes(1501)) == native.UNDECRYPTABLE
    following = sender.protect(struct.pack("!BBHII", 0x80, 96, 2, 3000, 7) + b"y" * 10)
    assert isinstance(native.unprotect_rtp(context, following), tuple)  # still usable


def test_a_sender_refuses_a_packet_too_long_and_bad_arguments() -> None:
    class Counted:
        _RTCDtlsTransport__tx_bytes = 0
        _RTCDtlsTransport__tx_packets = 0

    out = native.RtpSender(
        sender=Counted(),
        dtls=Counted(),
        first_byte=0x80,
        payload_type=96,
        ssrc=5,
        extension=b"",
        abs_send_time_at=-1,
        history=None,
        history_size=128,
    )
    with pytest.raises(RuntimeError, match="use"):
        out.send(1, 2, 0, b"x", 0)
    sent: list[bytes] = []
    outbound = session(Policy.SSRC_ANY_OUTBOUND)
    out.use(outbound, srtp_context(outbound), lambda data, addr: sent.append(data), ("h", 1))
    with pytest.raises(ValueError, match="too long"):
        out.send(1, 2, 0, bytes(1500), 0)
    with pytest.raises(OverflowError):
        out.send(70_000, 2, 0, b"x", 0)
    assert sent == []
    with pytest.raises(ValueError, match="out of range"):
        native.RtpSender(Counted(), Counted(), 0x80, 96, 5, bytes(300), -1, None, 128)
    with pytest.raises(ValueError, match="out of range"):
        native.RtpSender(Counted(), Counted(), 0x80, 96, 5, b"ab", 0, None, 128)


def test_c_reads_a_slot_only_on_the_class_it_belongs_to() -> None:
    # The C chain reads slots at cached offsets (_rtp_native.h, SlotCache). A slot descriptor
    # copied into another class's dict is refused there, as Python refuses it, instead of
    # reading that class's object at the other's offset.
    from vvserver.media.datagram_demux import C_DEMUX

    assert C_DEMUX is not None
    demux = C_DEMUX.__func__ if hasattr(C_DEMUX, "__func__") else C_DEMUX

    class Candidate:
        component = 1

    class Received:
        def __init__(self) -> None:
            self.datagrams: list[tuple[bytes, int]] = []

        def data_received(self, data: bytes, component: int) -> None:
            self.datagrams.append((data, component))

    class Protocol:
        __slots__ = ("local_candidate", "receiver")
        local_candidate: Candidate
        receiver: Received

    class Impostor:
        __slots__ = ("local_candidate", "other")
        local_candidate: Candidate
        other: Received

    Impostor.receiver = Protocol.__dict__["receiver"]  # type: ignore[attr-defined]
    rtp = bytes([0x80, 96]) + bytes(10)
    for _ in range(2):  # the second call with the cache filled
        protocol = Protocol()
        protocol.receiver = Received()
        protocol.local_candidate = Candidate()
        demux(protocol, rtp, ("127.0.0.1", 9))
        assert protocol.receiver.datagrams == [(rtp, 1)]
        impostor = Impostor()
        impostor.local_candidate = Candidate()
        impostor.other = Received()
        with pytest.raises(TypeError, match="doesn't apply"):
            demux(impostor, rtp, ("127.0.0.1", 9))
        assert impostor.other.datagrams == []
