"""The open calls' ledgers written to their visit rows: at every change, and every second.

A SIGKILL loses at most `LEDGER_PERSIST_S` of accounting: the row's `ledger_at` and in-call
flags say from when the sides in the call lose time (`domain.visits.call_downtime`). One
write transaction per second covers every open call of the process: one prepared UPDATE
executed for every visit with a side in the call (an executemany: one statement, one round
trip on PostgreSQL), without reading the rows. Every ledger write (the room watches' and this
one) runs under one lock, so two writers never split a checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, update

from vvserver.db.models import Visit
from vvserver.domain.services import Services
from vvserver.media.room_events import Role
from vvserver.visits_live.ledger import Accrued, CallLedger

logger = logging.getLogger(__name__)

LEDGER_PERSIST_S = 1.0

_VISITS = cast(Table, Visit.__table__)
# Built once: a Core statement (not the ORM's bulk update), run with one parameter set per call.
_ADD_SHARES = (
    update(_VISITS)
    .where(_VISITS.c.id == bindparam("visit_id", type_=_VISITS.c.id.type))
    .values(
        visitor_connected_s=_VISITS.c.visitor_connected_s
        + bindparam("visitor_connected", type_=_VISITS.c.visitor_connected_s.type),
        visitor_lost_s=_VISITS.c.visitor_lost_s
        + bindparam("visitor_lost", type_=_VISITS.c.visitor_lost_s.type),
        kiosk_connected_s=_VISITS.c.kiosk_connected_s
        + bindparam("kiosk_connected", type_=_VISITS.c.kiosk_connected_s.type),
        kiosk_lost_s=_VISITS.c.kiosk_lost_s
        + bindparam("kiosk_lost", type_=_VISITS.c.kiosk_lost_s.type),
        ledger_at=bindparam("at", type_=_VISITS.c.ledger_at.type),
        visitor_in_call=bindparam("visitor_in", type_=_VISITS.c.visitor_in_call.type),
        kiosk_in_call=bindparam("kiosk_in", type_=_VISITS.c.kiosk_in_call.type),
    )
)


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
        rows = [
            {
                "visit_id": watch.visit_id,
                "visitor_connected": accrued["visitor"].connected_s,
                "visitor_lost": accrued["visitor"].lost_s,
                "kiosk_connected": accrued["kiosk"].connected_s,
                "kiosk_lost": accrued["kiosk"].lost_s,
                "at": now,
                "visitor_in": watch.ledger.in_call("visitor"),
                "kiosk_in": watch.ledger.in_call("kiosk"),
            }
            for watch, accrued in shares
        ]
        try:
            async with services.write() as session:
                connection = await session.connection()
                await connection.execute(_ADD_SHARES, rows)
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
