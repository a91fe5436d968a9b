"""Which kiosks are online: a kiosk is online while it has an open signaling socket.

Signaling reports sockets opening and closing; the HTTP API and the live board read it.
"""

from __future__ import annotations

from collections import Counter


class KioskPresence:
    """Open kiosk sockets counted per kiosk (a kiosk may briefly have two while it reconnects)."""

    def __init__(self) -> None:
        self._sockets: Counter[int] = Counter()

    def connected(self, kiosk_id: int) -> None:
        self._sockets[kiosk_id] += 1

    def disconnected(self, kiosk_id: int) -> None:
        self._sockets[kiosk_id] -= 1
        if self._sockets[kiosk_id] <= 0:
            del self._sockets[kiosk_id]

    def is_online(self, kiosk_id: int) -> bool:
        return self._sockets[kiosk_id] > 0

    def online(self) -> list[int]:
        return sorted(self._sockets)
