"""Connected and lost time per participant, from the room's connection state changes.

Lost time starts when a participant who had connected drops, and runs until they are
connected again or the visit ends; time before the first connection is not lost time (that
is a late join). The ledger hands out what accrued since the last checkpoint, so each
database write adds its share to the visit's totals, whichever room instance produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from vvserver.media.room_events import Role

ROLES: tuple[Role, ...] = get_args(Role)


@dataclass
class _Side:
    connected_since: datetime | None = None
    lost_since: datetime | None = None
    connected_s: float = 0.0  # accrued since the last checkpoint
    lost_s: float = 0.0
    leaving: bool = False  # hung up on purpose: the coming disconnection is not lost time


@dataclass(frozen=True, slots=True)
class Accrued:
    """Seconds to add to the visit's totals for one participant."""

    connected_s: float
    lost_s: float


class ConnectionLedger:
    def __init__(self, *, lost_since: datetime | None = None) -> None:
        """`lost_since`: both sides count as lost from then until connected (a hand-off)."""
        self._sides: dict[Role, _Side] = {role: _Side(lost_since=lost_since) for role in ROLES}

    def is_connected(self, role: Role) -> bool:
        return self._sides[role].connected_since is not None

    @property
    def both_connected(self) -> bool:
        return all(self.is_connected(role) for role in ROLES)

    def connected(self, role: Role, at: datetime) -> None:
        side = self._sides[role]
        if side.connected_since is not None:
            return
        if side.lost_since is not None:
            side.lost_s += _seconds(side.lost_since, at)
            side.lost_since = None
        side.connected_since = at

    def expect_leave(self, role: Role) -> None:
        """The participant hangs up on purpose: time away is theirs, not lost to the facility."""
        self._sides[role].leaving = True

    def disconnected(self, role: Role, at: datetime) -> None:
        side = self._sides[role]
        leaving, side.leaving = side.leaving, False
        if side.connected_since is None:
            return  # joined but never connected: nothing was lost
        side.connected_s += _seconds(side.connected_since, at)
        side.connected_since = None
        side.lost_since = None if leaving else at

    def checkpoint(self, at: datetime) -> dict[Role, Accrued]:
        """What accrued up to `at` (open intervals included) since the last checkpoint."""
        accrued: dict[Role, Accrued] = {}
        for role, side in self._sides.items():
            if side.connected_since is not None:
                side.connected_s += _seconds(side.connected_since, at)
                side.connected_since = max(side.connected_since, at)
            if side.lost_since is not None:
                side.lost_s += _seconds(side.lost_since, at)
                side.lost_since = max(side.lost_since, at)
            accrued[role] = Accrued(side.connected_s, side.lost_s)
            side.connected_s = side.lost_s = 0.0
        return accrued

    def finish(self, at: datetime) -> dict[Role, Accrued]:
        """The last checkpoint: every interval ends at `at` (the visit's end)."""
        accrued = self.checkpoint(at)
        self._sides = {role: _Side() for role in ROLES}
        return accrued


def _seconds(since: datetime, until: datetime) -> float:
    return max(0.0, (until - since).total_seconds())
