"""The relay's lean SRTP calls give what pylibsrtp's own give, on the same kind of session."""

from __future__ import annotations

import os
import struct

import pylibsrtp
import pytest
from pylibsrtp import Policy, Session

from vvserver.media.srtp_session import LeanSrtp

KEY = bytes(range(30))  # AES-128 master key + salt, as DTLS-SRTP exports it


def session(direction: int) -> Session:
    return Session(policy=Policy(key=KEY, ssrc_type=direction))


def packets(ssrc: int, count: int) -> list[bytes]:
    sizes = [12, 200, 1100, 1200]
    return [
        struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc) + os.urandom(sizes[seq % 4])
        for seq in range(count)
    ]


def test_protect_gives_the_same_bytes_as_pylibsrtp_and_unprotect_gives_the_packets_back() -> None:
    plain = packets(0x1234, 300)
    ours_tx, their_tx = (
        LeanSrtp(session(Policy.SSRC_ANY_OUTBOUND)),
        session(Policy.SSRC_ANY_OUTBOUND),
    )
    theirs = [their_tx.protect(p) for p in plain]
    ours = [ours_tx.protect(p) for p in plain]
    assert ours == theirs
    assert all(len(p) > len(q) for p, q in zip(ours, plain, strict=True))  # the auth tag
    receiver = LeanSrtp(session(Policy.SSRC_ANY_INBOUND))
    assert [receiver.unprotect(p) for p in ours] == plain


def test_a_tampered_or_replayed_packet_is_refused_as_pylibsrtp_refuses_it() -> None:
    sender = LeanSrtp(session(Policy.SSRC_ANY_OUTBOUND))
    receiver = LeanSrtp(session(Policy.SSRC_ANY_INBOUND))
    protected = sender.protect(packets(7, 1)[0])
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    with pytest.raises(pylibsrtp.Error):
        receiver.unprotect(tampered)
    receiver.unprotect(protected)
    with pytest.raises(pylibsrtp.Error):
        receiver.unprotect(protected)  # replay
    # The session is still usable after the refusals.
    nxt = sender.protect(struct.pack("!BBHII", 0x80, 96, 1, 3000, 7) + b"x" * 100)
    assert receiver.unprotect(nxt).endswith(b"x" * 100)


def test_a_packet_too_long_for_the_session_buffer_is_refused_before_libsrtp() -> None:
    sender = LeanSrtp(session(Policy.SSRC_ANY_OUTBOUND))
    with pytest.raises(ValueError, match="too long"):
        sender.protect(b"\x80" + bytes(1499))
    with pytest.raises(ValueError, match="too long"):
        LeanSrtp(session(Policy.SSRC_ANY_INBOUND)).unprotect(bytes(1501))
