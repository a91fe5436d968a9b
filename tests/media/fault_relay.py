"""A UDP relay between one peer and the server that injects network faults: outages, jitter.

The kernel here has no netem (`tc qdisc add dev lo root netem` fails inside `unshare -n`),
so the media fault tests put this relay on the path instead. Both sides' only ICE candidate
becomes one of the relay's two sockets: the offer is rewritten so that the server sees the
peer at `toward_server`, and the answer so that the peer sees the server at `toward_peer`.
STUN, DTLS, SRTP and SRTCP pass unchanged (the RTP header is in the clear under SRTP, which
is all the relay reads), so the call is end-to-end encrypted through it.

    relay = await FaultRelay.open()
    await peer.connect(relay.answerer(lambda offer: media.join(visit_id, "visitor", offer)))
    relay.block()             # the network is gone, both ways
    relay.unblock()
    relay.upstream_jitter = Jitter(payload_type=relay.opus_payload_type, share=0.3, delay_s=0.03)
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

Address = tuple[str, int]
Answerer = Callable[[str], Awaitable[str]]
RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux
_CANDIDATE = re.compile(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host")


@dataclass
class Jitter:
    """Delay `share` of the RTP packets of `payload_type` by `delay_s`: they arrive after the
    ones sent just after them (reordering)."""

    payload_type: int
    share: float
    delay_s: float


@dataclass
class Counters:
    upstream: int = 0  # datagrams peer -> server forwarded
    downstream: int = 0
    dropped: int = 0
    delayed: int = 0
    retransmissions_after_outage: int = 0  # RTX packets upstream after the last unblock


def _rtp_payload_type(data: bytes) -> int | None:
    """The payload type of an RTP packet (None for STUN, DTLS and RTCP)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    payload_type = data[1] & 0x7F
    return None if 64 <= payload_type <= 95 else payload_type  # 72-76: RTCP


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)


def _same(endpoint: _Endpoint) -> _Endpoint:
    return endpoint


def _roomy_socket() -> socket.socket:
    """A UDP socket on 127.0.0.1 whose receive buffer holds a burst of retransmissions (the
    default ~200 KB overflows when a busy test loop falls behind, and a lost NACK means no
    retransmissions at all). Raising it past `net.core.rmem_max` needs root."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


class FaultRelay:
    def __init__(self) -> None:
        self.toward_server = _Endpoint(self._from_server)
        self.toward_peer = _Endpoint(self._from_peer)
        self.peer: Address | None = None
        self.server: Address | None = None
        self.blocked = False
        self.upstream_jitter: Jitter | None = None
        self.opus_payload_type: int | None = None
        self.rtx_payload_type: int | None = None
        self.counters = Counters()
        self._random = random.Random(7)  # the same faults every run
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls) -> FaultRelay:
        relay = cls()
        for endpoint in (relay.toward_server, relay.toward_peer):
            await relay._loop.create_datagram_endpoint(
                functools.partial(_same, endpoint), sock=_roomy_socket()
            )
        return relay

    @staticmethod
    def _port(endpoint: _Endpoint) -> int:
        assert endpoint.transport is not None
        return int(endpoint.transport.get_extra_info("sockname")[1])

    @staticmethod
    def _rewrite(sdp: str, port: int) -> tuple[str, int]:
        found = _CANDIDATE.search(sdp)
        assert found is not None, "no 127.0.0.1 host candidate in the SDP"
        old = found.group(1)
        for pattern in (f" 127.0.0.1 {old} typ", f"m=audio {old} ", f"m=video {old} "):
            sdp = sdp.replace(pattern, pattern.replace(old, str(port)))
        return sdp, int(old)

    def rewrite_offer(self, offer: str) -> str:
        """The peer's offer as the server must see it: the peer is at `toward_server`."""
        rewritten, peer_port = self._rewrite(offer, self._port(self.toward_server))
        self.peer = ("127.0.0.1", peer_port)
        opus = re.search(r"a=rtpmap:(\d+) opus/", offer)
        rtx = re.search(r"a=rtpmap:(\d+) rtx/", offer)
        self.opus_payload_type = int(opus.group(1)) if opus else None
        self.rtx_payload_type = int(rtx.group(1)) if rtx else None
        return rewritten

    def rewrite_answer(self, answer: str) -> str:
        """The server's answer as the peer must see it: the server is at `toward_peer`."""
        rewritten, server_port = self._rewrite(answer, self._port(self.toward_peer))
        self.server = ("127.0.0.1", server_port)
        return rewritten

    def answerer(self, inner: Answerer) -> Answerer:
        async def answer(offer: str) -> str:
            return self.rewrite_answer(await inner(self.rewrite_offer(offer)))

        return answer

    def block(self) -> None:
        """The peer's network goes away: nothing passes either way."""
        self.blocked = True

    def unblock(self) -> None:
        self.blocked = False
        self.counters.retransmissions_after_outage = 0

    def _from_peer(self, data: bytes, addr: Address) -> None:
        if addr != self.peer or self.server is None:
            return
        if self.blocked:
            self.counters.dropped += 1
            return
        payload_type = _rtp_payload_type(data)
        if payload_type is not None and payload_type == self.rtx_payload_type:
            self.counters.retransmissions_after_outage += 1
        jitter = self.upstream_jitter
        if (
            jitter is not None
            and payload_type == jitter.payload_type
            and self._random.random() < jitter.share
        ):
            self.counters.delayed += 1
            self._loop.call_later(jitter.delay_s, self._send_upstream, data)
            return
        self._send_upstream(data)

    def _send_upstream(self, data: bytes) -> None:
        transport = self.toward_server.transport
        if transport is not None and self.server is not None:
            self.counters.upstream += 1
            transport.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: Address) -> None:
        if addr != self.server or self.peer is None:
            return
        if self.blocked:
            self.counters.dropped += 1
            return
        transport = self.toward_peer.transport
        if transport is not None:
            self.counters.downstream += 1
            transport.sendto(data, self.peer)

    def close(self) -> None:
        for endpoint in (self.toward_server, self.toward_peer):
            if endpoint.transport is not None:
                endpoint.transport.close()
