"""The server's long-lived parts, built once per app and stored under an ``AppKey``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.engine import Database
from vvserver.db.wakeups import WorkerWakeups
from vvserver.domain.accounts.ratelimit import RateLimiter
from vvserver.domain.accounts.secrets import PasswordHashing
from vvserver.domain.accounts.session_cache import SessionCache
from vvserver.domain.audit.chain import AuditLog, AuditRecord
from vvserver.domain.clock import Clock
from vvserver.domain.facilities.presence import (
    KioskPresence,
    ParticipantPresence,
    VisitorAvailability,
)
from vvserver.domain.visits.bus import (
    AFTER_COMMIT_EVENTS_KEY,
    CredentialsRevokedEvent,
    VisitEndedEvent,
    VisitEventBus,
)
from vvserver.domain.visits.pin_tries import PinStore, PinTries
from vvserver.domain.visits.states import ENDED_VISITS_KEY
from vvserver.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    audit: AuditLog
    passwords: PasswordHashing
    secret: bytes
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    events: VisitEventBus = field(default_factory=VisitEventBus)
    sessions: SessionCache = field(default_factory=SessionCache)
    kiosks_online: KioskPresence = field(default_factory=KioskPresence)
    # Which sides of which visits have a socket in the call (the live board shows it).
    participants: ParticipantPresence = field(default_factory=ParticipantPresence)
    # Visitors whose open page says "available now" (a kiosk's resident may ring them).
    available_visitors: VisitorAvailability = field(default_factory=VisitorAvailability)
    # Kiosk PIN confirmations, wrong tries and locks per visit.
    pin_tries: PinStore = field(default_factory=PinTries)
    # Commits that change the scheduler's or the mailer's input wake them (see wakeups.py).
    wakeups: WorkerWakeups = field(default_factory=WorkerWakeups)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A serialised write transaction; the audit anchor moves forward after it commits."""
        async with self.db.write() as session:
            yield session
        self.audit.anchor_after_commit(session)
        self.wakeups.after_commit(session)
        for visit_id, state, reason in session.info.pop(ENDED_VISITS_KEY, []):
            self.events.publish(VisitEndedEvent(visit_id, state, reason))
        for event in session.info.pop(AFTER_COMMIT_EVENTS_KEY, []):
            if isinstance(event, CredentialsRevokedEvent):
                # This process's API sees the revocation before the caller hears it is done.
                self.sessions.forget_revoked(event)
            self.events.publish(event)

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.db.read()

    async def audit_now(self, record: AuditRecord) -> None:
        """Audit in a transaction of its own (e.g. a failed login whose work rolled back)."""
        async with self.write() as session:
            await self.audit.append(session, record, self.clock.now())
