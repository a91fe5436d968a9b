"""Who is connected: kiosks online (an open signaling socket), participants in a call, and
visitors "available now" (an open visitor page with availability switched on: Visit now).

Signaling reports sockets opening and closing; the HTTP API and the live board read it. The
counts live in a ``SocketCounts``: this process's own by default; in a cluster one that also
holds every other node's counts (``vvserver.cluster.presence``), so a kiosk connected to any
node is online everywhere.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

ParticipantRole = Literal["visitor", "kiosk"]


class SocketCounts:
    """Open sockets counted per key (a kiosk may briefly have two while it reconnects)."""

    def __init__(self) -> None:
        self._local: Counter[str] = Counter()

    def add(self, key: str, delta: int) -> None:
        self._local[key] += delta
        if self._local[key] <= 0:
            del self._local[key]

    def total(self, key: str) -> int:
        return self._local[key]

    def keys(self, prefix: str) -> set[str]:
        return {key for key in self._local if key.startswith(prefix)}


class KioskPresence:
    """A kiosk is online while it has an open socket (to any node of a cluster)."""

    def __init__(self, counts: SocketCounts | None = None) -> None:
        self.counts = counts or SocketCounts()

    def connected(self, kiosk_id: int) -> None:
        self.counts.add(f"kiosk:{kiosk_id}", 1)

    def disconnected(self, kiosk_id: int) -> None:
        self.counts.add(f"kiosk:{kiosk_id}", -1)

    def is_online(self, kiosk_id: int) -> bool:
        return self.counts.total(f"kiosk:{kiosk_id}") > 0

    def online(self) -> list[int]:
        return sorted(int(key.split(":")[1]) for key in self.counts.keys("kiosk:"))


class ParticipantPresence:
    """Which sides of which visits have a socket that joined the call."""

    def __init__(self, counts: SocketCounts | None = None) -> None:
        self.counts = counts or SocketCounts()

    def joined(self, visit_id: int, role: ParticipantRole) -> None:
        self.counts.add(f"joined:{visit_id}:{role}", 1)

    def left(self, visit_id: int, role: ParticipantRole) -> None:
        self.counts.add(f"joined:{visit_id}:{role}", -1)

    def is_joined(self, visit_id: int, role: ParticipantRole) -> bool:
        return self.counts.total(f"joined:{visit_id}:{role}") > 0


class VisitorAvailability:
    """A visitor is available now while one of their open pages has availability switched on.

    Each such socket counts once (``available``/``unavailable`` in pairs, per socket), so a
    second tab switching off does not hide the first; in a cluster the counts are every node's.
    """

    def __init__(self, counts: SocketCounts | None = None) -> None:
        self.counts = counts or SocketCounts()

    def available(self, visitor_id: int) -> None:
        self.counts.add(f"available:{visitor_id}", 1)

    def unavailable(self, visitor_id: int) -> None:
        self.counts.add(f"available:{visitor_id}", -1)

    def is_available(self, visitor_id: int) -> bool:
        return self.counts.total(f"available:{visitor_id}") > 0
