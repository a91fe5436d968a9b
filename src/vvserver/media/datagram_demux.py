"""Media datagrams past aioice's STUN parse (RFC 7983's first byte).

aioice's `StunProtocol.datagram_received` tries to parse every datagram as STUN and takes the
`ValueError` as "not STUN": an exception raised and caught per media packet. Installed once
(`install_datagram_demux`), every aioice socket protocol looks at the first byte first: RTP and
RTCP (128-191) go straight to the connection's `data_received` (where the lean receive path,
`fast_receive`, takes them), anything else to aioice's own. In C when the chain is built
(`_rtp_native.datagram_demux`), in Python otherwise.
"""

from __future__ import annotations

from typing import Any

import aioice.ice

from vvserver.media.srtp_session import NATIVE

STUN_DATAGRAM_RECEIVED = aioice.ice.StunProtocol.datagram_received  # aioice's own


def demux_datagram(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
    """aioice's `StunProtocol.datagram_received`, demultiplexing by the first byte first."""
    if data and 127 < data[0] < 192:
        self.receiver.data_received(data, self.local_candidate.component)
    else:
        STUN_DATAGRAM_RECEIVED(self, data, addr)


# `demux_datagram` in C (a method for StunProtocol), with aioice's own for what is not RTP.
C_DEMUX: Any = NATIVE.datagram_demux(STUN_DATAGRAM_RECEIVED) if NATIVE is not None else None


def install_datagram_demux() -> None:
    """Make every aioice socket protocol demultiplex as `demux_datagram` does (idempotent)."""
    demux = C_DEMUX if C_DEMUX is not None else demux_datagram
    aioice.ice.StunProtocol.datagram_received = demux  # type: ignore[method-assign,assignment]
