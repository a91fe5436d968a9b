"""The open calls' ledgers written to their visit rows: at every change, and every second.

A SIGKILL loses at most `LEDGER_PERSIST_S` of accounting: the row's `ledger_at` and in-call
flags say from when the sides in the call lose time (`domain.visits.call_downtime`). One
write transaction per second covers every open call of the process, one UPDATE per visit
with a side in the call, without reading the rows. Every ledger write (the room watches'
and this one) runs under one lock, so two writers never split a checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import update

from vvserver.db.models import Visit
from vvserver.domain.services import Services
from vvserver.media.room_events import Role
from vvserver.visits_live.ledger import Accrued, CallLedger

logger = logging.getLogger(__name__)

LEDGER_PERSIST_S = 1.0


def add_time(visit: Visit, accrued: dict[Role, Accrued]) -> None:
    visit.visitor_connected_s += accrued["visitor"].connected_s
    visit.visitor_lost_s += accrued["visitor"].lost_s
    visit.kiosk_connected_s += accrued["kiosk"].connected_s
    visit.kiosk_lost_s += accrued["kiosk"].lost_s


def record_checkpoint(visit: Visit, ledger: CallLedger, at: datetime) -> None:
    """Add what accrued up to `at` to the (locked) visit row, and where the call stands."""
    add_time(visit, ledger.checkpoint(at))
    mark_open_call(visit, ledger, at)


def mark_open_call(visit: Visit, ledger: CallLedger, at: datetime) -> None:
    """The row says which sides are in the call at `at` (None when nobody is)."""
    visit.visitor_in_call = ledger.in_call("visitor")
    visit.kiosk_in_call = ledger.in_call("kiosk")
    visit.ledger_at = at if ledger.anyone_in_call else None


class OpenLedger(Protocol):
    """What the periodic writer needs of a room watch."""

    visit_id: int
    ledger: CallLedger
    ending: bool


async def persist_open_ledgers(
    services: Services, watches: Iterable[OpenLedger], lock: asyncio.Lock
) -> int:
    """One transaction: every open call with a side in it; returns the rows written."""
    async with lock:
        now = services.clock.now()
        due = [w for w in watches if not w.ending and w.ledger.anyone_in_call]
        if not due:
            return 0
        shares = [(w, w.ledger.checkpoint(now)) for w in due]
        try:
            async with services.write() as session:
                for watch, accrued in shares:
                    visitor, kiosk = accrued["visitor"], accrued["kiosk"]
                    await session.execute(
                        update(Visit)
                        .where(Visit.id == watch.visit_id)
                        .values(
                            visitor_connected_s=Visit.visitor_connected_s + visitor.connected_s,
                            visitor_lost_s=Visit.visitor_lost_s + visitor.lost_s,
                            kiosk_connected_s=Visit.kiosk_connected_s + kiosk.connected_s,
                            kiosk_lost_s=Visit.kiosk_lost_s + kiosk.lost_s,
                            ledger_at=now,
                            visitor_in_call=watch.ledger.in_call("visitor"),
                            kiosk_in_call=watch.ledger.in_call("kiosk"),
                        )
                        .execution_options(synchronize_session=False)
                    )
        except BaseException:
            for watch, accrued in shares:
                watch.ledger.give_back(accrued)  # counted with the next write instead
            raise
        return len(shares)


async def persist_every(
    services: Services,
    watches: Callable[[], Iterable[OpenLedger]],
    lock: asyncio.Lock,
    stop: asyncio.Event,
    interval: float = LEDGER_PERSIST_S,
) -> None:
    """Runs for the life of the media service (as a task) until `stop` is set. It is stopped,
    not cancelled: a write cancelled half-way could leave a pooled connection in a
    transaction."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await persist_open_ledgers(services, watches(), lock)
        except Exception:
            logger.exception("writing the open calls' ledgers failed; retrying")


class LedgerWriter:
    """The periodic writer of a media service: started with its first room, stopped (not
    cancelled) at shutdown. `lock` is the one every ledger write takes."""

    def __init__(self, services: Services, watches: Callable[[], Iterable[OpenLedger]]) -> None:
        self.lock = asyncio.Lock()
        self._services = services
        self._watches = watches
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.create_task(
                persist_every(self._services, self._watches, self.lock, self._stop),
                name="call ledgers writer",
            )

    async def close(self) -> None:
        """Safe to call twice."""
        self._stop.set()
        if self._task is not None:
            await self._task
