"""A tiny in-process event bus for visit events (scheduler, state changes -> media, signaling).

The scheduler publishes after its database change has committed; each subscriber gets its own
bounded queue. A subscriber that falls behind loses events (logged), never blocks the publisher.
Domain code inside a write transaction queues its events with ``publish_after_commit``:
``Services.write`` publishes them once the transaction has committed (never for a rollback).

Every event is a frozen dataclass with a ``kind`` Literal, so a cluster (``vvserver.cluster``)
can carry it to the other nodes as JSON and deliver it there (``deliver_remote``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class VisitStartEvent:
    """The visit's start time has come: the kiosk should bring up the call."""

    visit_id: int
    facility_id: int
    unit_id: int
    kiosk_id: int
    start_at: datetime
    end_at: datetime
    kind: Literal["visit_start"] = "visit_start"


@dataclass(frozen=True, slots=True)
class VisitEndedEvent:
    """A visit reached an end state (cancelled, no-show, failed, completed, terminated).

    Published after the change committed, whoever made it, so that an open call is hung up and
    live views update.
    """

    visit_id: int
    state: str
    reason: str | None
    kind: Literal["visit_ended"] = "visit_ended"


@dataclass(frozen=True, slots=True)
class LiveListChangedEvent:
    """Something officers' live lists show changed for a visit (a flag was added)."""

    visit_id: int
    kind: Literal["live_list_changed"] = "live_list_changed"


@dataclass(frozen=True, slots=True)
class CredentialsRevokedEvent:
    """Credentials stopped working (committed): nothing may act on them any more.

    * ``session_hash`` alone: that one session ended (sign-out).
    * ``account_id``: every session of the account ended (deactivation, password reset, sign
      out everywhere), except ``keep_session_hash`` when given (a password change keeps the
      session it was made from).
    * ``kiosk_id``: the kiosk's device token was disabled or replaced.

    Signaling closes the matching sockets (1008) and the in-process session cache drops the
    matching entries; in a cluster every node gets this event from the bus.
    """

    account_id: int | None = None
    kiosk_id: int | None = None
    session_hash: str | None = None
    keep_session_hash: str | None = None
    reason: str = "credentials_revoked"
    kind: Literal["credentials_revoked"] = "credentials_revoked"

    def matches_session(self, account_id: int | None, session_hash: str | None) -> bool:
        """Whether a session (of ``account_id``, key ``session_hash``) is revoked by this event."""
        if session_hash is not None and session_hash == self.session_hash:
            return True
        return (
            self.account_id is not None
            and account_id == self.account_id
            and self.session_hash is None
            and (self.keep_session_hash is None or session_hash != self.keep_session_hash)
        )


@dataclass(frozen=True, slots=True)
class ChatPostedEvent:
    """A chat message of the visit was stored: the sockets following it read what is new."""

    visit_id: int
    kind: Literal["chat_posted"] = "chat_posted"


@dataclass(frozen=True, slots=True)
class StaffAlertEvent:
    """Something staff in the facility must see at once (a kiosk PIN locked, no PIN set)."""

    code: str
    visit_id: int
    kiosk_id: int
    facility_id: int
    message: str
    at: datetime
    kind: Literal["staff_alert"] = "staff_alert"


@dataclass(frozen=True, slots=True)
class RingEvent:
    """Visit now: an on-demand visit rings, or its ring ended (committed).

    ``state``: ``ringing``; or how the ring ended: ``accepted``, ``declined`` (by the side
    rung), ``withdrawn`` (by the side that rang) or ``missed`` (nobody answered in time).
    ``started_by``: who rang, ``visitor`` or ``kiosk``. Signaling rings the kiosk's sockets and
    the visitor's open pages (on every node of a cluster) and tells both sides how it ended.
    """

    visit_id: int
    kiosk_id: int
    visitor_id: int
    facility_id: int
    started_by: str
    state: str
    kind: Literal["ring"] = "ring"


VisitEvent = (
    VisitStartEvent
    | VisitEndedEvent
    | LiveListChangedEvent
    | ChatPostedEvent
    | StaffAlertEvent
    | CredentialsRevokedEvent
    | RingEvent
)
# ``session.info`` key under which a write transaction keeps the events it publishes on commit.
AFTER_COMMIT_EVENTS_KEY = "vv_after_commit_events"


def publish_after_commit(session: AsyncSession, event: VisitEvent) -> None:
    """Queue ``event`` for the bus; ``Services.write`` publishes it after the commit."""
    session.info.setdefault(AFTER_COMMIT_EVENTS_KEY, []).append(event)


class VisitEvents(Protocol):
    """What the scheduler needs from a bus."""

    def publish(self, event: VisitEvent) -> None: ...


class VisitEventBus:
    """Fan-out to subscriber queues; ``publish`` never blocks and never raises."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subscribers: list[asyncio.Queue[VisitEvent]] = []

    def subscribe(self) -> asyncio.Queue[VisitEvent]:
        queue: asyncio.Queue[VisitEvent] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[VisitEvent]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: VisitEvent) -> None:
        self.deliver_remote(event)

    def deliver_remote(self, event: VisitEvent) -> None:
        """Hand an event to this process's subscribers only (one that came from another node)."""
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("visit event subscriber is full; dropped %s", event)
