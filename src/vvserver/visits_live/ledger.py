"""Connected and lost time per side of a call, from the room's events.

A side is *connected* from its connection's "connected" state while its media reaches the
relay. It is *losing time* from the moment its media stopped (its last packet before more
than 2 s of silence, `MediaFlowChanged`) or its connection dropped, whichever came first,
until its media flows again or the visit ends. A connection can look fine for ~30 s after
the network went away (ICE consent), which is why media, not the connection, starts the
count. Time before a side's first connection is not lost (a late join), nor is time after
it hung up on purpose. Nothing counts before the slot's start (`counts_from`): a side that
joins early waits in the waiting room, where it is neither connected nor losing time; its
intervals are counted from the start.

The ledger hands out what accrued since the last checkpoint (`checkpoint`), so each
database write adds its share to the visit's totals, whichever room instance produced it.
Changes are reported late but dated exactly (a silence 2 s after the last packet, a return
up to 0.5 s after the first one): time a checkpoint already counted on the wrong side moves
to the right one, so a checkpoint's share can be negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from vvserver.media.room_events import Role

ROLES: tuple[Role, ...] = get_args(Role)


@dataclass
class _Side:
    counts_from: datetime | None = None  # the slot's start: nothing counts before it
    connected: bool = False  # the connection is up
    active_since: datetime | None = None  # connected with media (or not known to be silent)
    lost_since: datetime | None = None  # losing time since
    connected_s: float = 0.0  # accrued since the last checkpoint
    lost_s: float = 0.0
    leaving: bool = False  # hung up on purpose: the coming disconnection is not lost time

    @property
    def in_call(self) -> bool:
        return self.connected or self.lost_since is not None

    def span(self, since: datetime, until: datetime) -> float:
        """`until - since`, both moved up to the slot's start: may be negative (a correction)."""
        if self.counts_from is not None:
            since, until = max(since, self.counts_from), max(until, self.counts_from)
        return (until - since).total_seconds()

    def stop_active(self, at: datetime) -> None:
        if self.active_since is not None:
            self.connected_s += self.span(self.active_since, at)  # may be negative
            self.active_since = None

    def stop_losing(self, at: datetime) -> None:
        if self.lost_since is not None:
            self.lost_s += self.span(self.lost_since, at)  # may be negative
            self.lost_since = None


@dataclass(frozen=True, slots=True)
class Accrued:
    """Seconds to add to the visit's totals for one participant."""

    connected_s: float
    lost_s: float


class CallLedger:
    """`counts_from`: the slot's start (None: everything counts, e.g. in unit tests)."""

    def __init__(self, counts_from: datetime | None = None) -> None:
        self.counts_from = counts_from
        self._sides: dict[Role, _Side] = {role: _Side(counts_from) for role in ROLES}

    def is_connected(self, role: Role) -> bool:
        return self._sides[role].connected

    @property
    def both_connected(self) -> bool:
        return all(self.is_connected(role) for role in ROLES)

    def in_call(self, role: Role) -> bool:
        """Connected or losing time: a server stop now would cost this side time."""
        return self._sides[role].in_call

    @property
    def anyone_in_call(self) -> bool:
        return any(side.in_call for side in self._sides.values())

    def losing(self, role: Role) -> bool:
        return self._sides[role].lost_since is not None

    def connected(self, role: Role, at: datetime) -> None:
        side = self._sides[role]
        if side.connected:
            return
        side.connected = True
        if side.lost_since is None:
            side.active_since = at
        # else: still losing time until its media flows again

    def media(self, role: Role, flowing: bool, at: datetime) -> None:
        """The side's media reached the relay again at `at`, or stopped after `at`."""
        side = self._sides[role]
        if flowing:
            side.stop_losing(at)
            if side.connected and side.active_since is None:
                side.active_since = at
        elif side.connected and side.lost_since is None:
            side.stop_active(at)
            side.lost_since = at

    def expect_leave(self, role: Role) -> None:
        """The participant hangs up on purpose: time away is theirs, not lost to the facility."""
        self._sides[role].leaving = True

    def disconnected(self, role: Role, at: datetime) -> None:
        side = self._sides[role]
        leaving, side.leaving = side.leaving, False
        if not side.connected:
            return  # joined but never connected: nothing was lost
        side.connected = False
        side.stop_active(at)
        if leaving:
            side.stop_losing(at)
        elif side.lost_since is None:
            side.lost_since = at

    def resume_after_restart(self, role: Role, since: datetime) -> None:
        """The side was in the call when the server stopped at `since` (last accounted):
        it loses time from then until its media flows again."""
        side = self._sides[role]
        if not side.in_call:
            side.lost_since = since

    def checkpoint(self, at: datetime) -> dict[Role, Accrued]:
        """What accrued up to `at` (open intervals included) since the last checkpoint."""
        accrued: dict[Role, Accrued] = {}
        for role, side in self._sides.items():
            if side.active_since is not None and at > side.active_since:
                side.connected_s += side.span(side.active_since, at)
                side.active_since = at
            if side.lost_since is not None and at > side.lost_since:
                side.lost_s += side.span(side.lost_since, at)
                side.lost_since = at
            accrued[role] = Accrued(side.connected_s, side.lost_s)
            side.connected_s = side.lost_s = 0.0
        return accrued

    def give_back(self, accrued: dict[Role, Accrued]) -> None:
        """A checkpoint that could not be written: count it with the next one."""
        for role, share in accrued.items():
            self._sides[role].connected_s += share.connected_s
            self._sides[role].lost_s += share.lost_s

    def finish(self, at: datetime) -> dict[Role, Accrued]:
        """The last checkpoint: every interval ends at `at` (the visit's end)."""
        accrued = self.checkpoint(at)
        self._sides = {role: _Side(self.counts_from) for role in ROLES}
        return accrued
