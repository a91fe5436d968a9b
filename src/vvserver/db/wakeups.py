"""Wake-ups for the timed-work workers: a commit that changes their input wakes them at once.

The scheduler and the mailer sleep until their next deadline (read from the database) or until
woken, with ``scheduler_interval_s`` / ``mailer_interval_s`` as the longest sleep. A write
transaction that changes what they work on marks the worker in ``session.info``; after the
commit ``Services.write`` hands the marks to ``WorkerWakeups.after_commit``, which wakes the
worker. Waking only after the commit matters: a worker woken earlier would read the database
before the change is visible and go back to sleep.

Marks come from two places:

* ORM flushes, recognised here by the classes flushed (any ``Visit``, ``Facility``,
  ``HousingUnit`` or ``VisitSeries`` change wakes the scheduler; a new or changed
  ``Notification`` the mailer).
  ``Kiosk`` heartbeats and ``Recording`` rows deliberately wake nothing: no deadline depends on
  them soon (purge dates are days away and the safety-net pass finds them).
* ``note_change(session, ...)``, for writes that bypass the ORM flush (prepared inserts):
  ``notify.outbox.queue_email`` calls it for every queued e-mail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.orm import Session

from vvserver.aio import wait_event
from vvserver.db.models import Facility, HousingUnit, Notification, Visit, VisitSeries

logger = logging.getLogger(__name__)

Worker = Literal["scheduler", "mailer"]
WAKE_KEY = "vv_wake_workers"
_SCHEDULER_INPUTS = (Visit, Facility, HousingUnit, VisitSeries)
_MAILER_INPUTS = (Notification,)


class WorkerWake:
    """One worker's wake-up flag (level-triggered) and how many passes the worker ran."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.passes = 0

    def wake(self) -> None:
        self._event.set()

    def woken(self) -> bool:
        return self._event.is_set()

    def begin_pass(self) -> None:
        """Called by the worker as a pass starts: later commits wake it again."""
        self._event.clear()
        self.passes += 1

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken before that."""
        if self._event.is_set():
            return True
        if seconds <= 0:
            return False
        # Commits during shutdown (calls ending) set the event just as the worker is cancelled.
        return await wait_event(self._event, seconds)


class WorkerWakeups:
    """The wake-up flags of the scheduler and the mailer of one server."""

    def __init__(self) -> None:
        self.scheduler = WorkerWake()
        self.mailer = WorkerWake()

    def after_commit(self, session: Any) -> None:
        """Wake the workers whose input the committed transaction changed. Never raises."""
        marks = session.info.pop(WAKE_KEY, None)
        if not marks:
            return
        if "scheduler" in marks:
            self.scheduler.wake()
        if "mailer" in marks:
            self.mailer.wake()


def note_change(session: Any, *workers: Worker) -> None:
    """Mark ``session``'s transaction as changing these workers' input (woken on commit).

    ``session`` is an ``AsyncSession`` or a ``Session``: both share the ``info`` dict.
    """
    session.info.setdefault(WAKE_KEY, set()).update(workers)


@event.listens_for(Session, "after_flush")
def _note_flushed_inputs(session: Session, _flush_context: object) -> None:
    # At after_flush the session still lists what this flush wrote as new, dirty or deleted.
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _SCHEDULER_INPUTS) for obj in changed):
        note_change(session, "scheduler")
    if any(isinstance(obj, _MAILER_INPUTS) for obj in changed):
        note_change(session, "mailer")
