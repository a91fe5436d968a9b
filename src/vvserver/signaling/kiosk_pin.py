"""Optional PIN confirmation at the kiosk (facility rule ``kiosk_pin_required``).

Where the visit's rules (facility rules, unit override) require it, the kiosk's ``offer`` for
a visit is refused with ``pin_required`` until the person in custody has typed their PIN and
the kiosk has sent it as ``pin_confirm``; the PIN is checked against ``Person.pin_hash``
(argon2, off the event loop). A confirmed visit stays confirmed until it ends, so a kiosk that
reconnects mid-visit does not ask again. The state (confirmed, wrong tries, lock) lives in
``services.pin_tries``: in a cluster that is Redis, so it holds on every node.

Wrong PINs: ``MAX_WRONG_PINS`` per visit, then ``pin_locked`` for ``PIN_LOCK`` (no PIN is
checked meanwhile) and an officer alert. A person without a PIN is refused with
``pin_not_set`` (and staff are alerted): letting the call through would make the facility's
rule a no-op for exactly the people it has not been set up for. Every attempt is audited
(``kiosk.pin_confirm``; ``kiosk.pin_locked`` when the lock starts); the PIN never is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vvserver.db.models import ACTIVE_VISIT_STATES, Person, Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, NotFound, TooManyRequests
from vvserver.domain.services import Services
from vvserver.domain.visits.kiosk_day import pin_required_for
from vvserver.domain.visits.pin_tries import PinState
from vvserver.signaling.protocol import AlertMessage

logger = logging.getLogger(__name__)

MAX_WRONG_PINS = 5
PIN_LOCK = timedelta(minutes=15)

# (alert, facility id): the hub's delivery to staff in scope.
AlertSink = Callable[[AlertMessage, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Attempt:
    visit: Visit
    facility_id: int
    pin_hash: str | None


class KioskPins:
    """The PIN checks of kiosks; the state per visit is in ``services.pin_tries``."""

    def __init__(self, services: Services, alert: AlertSink) -> None:
        self.services = services
        self.alert = alert

    async def still_required(self, visit_id: int) -> bool:
        """Whether the visit needs the PIN and it was not confirmed yet (e.g. to answer a
        Visit-now ring, where it was given before the visit started)."""
        if (await self.services.pin_tries.get(visit_id)).confirmed:
            return False
        async with self.services.read() as session:
            visit = await session.get(Visit, visit_id)
            return visit is not None and await pin_required_for(session, visit)

    async def check_offer(self, visit_id: int) -> None:
        """Refuse a kiosk's offer (``pin_required``) while the visit needs an unconfirmed PIN."""
        if await self.still_required(visit_id):
            raise Forbidden("the person's PIN is required first (pin_confirm)", code="pin_required")

    async def _load(self, visit_id: int, kiosk_id: int, now: datetime) -> _Attempt:
        async with self.services.read() as session:
            visit = await session.get(Visit, visit_id)
            if visit is None or visit.kiosk_id != kiosk_id:
                raise NotFound("no such visit")
            if visit.state not in ACTIVE_VISIT_STATES or now >= visit.end_at:
                raise Conflict("the visit is over", code="visit_not_active")
            if not await pin_required_for(session, visit):
                raise Conflict("this visit needs no PIN; send the offer", code="pin_not_required")
            person = await session.get(Person, visit.person_id)
            return _Attempt(visit, visit.facility_id, person.pin_hash if person else None)

    async def confirm(
        self, visit_id: int, kiosk_id: int, pin: str, *, request_id: str | None
    ) -> None:
        """Check the PIN typed at the kiosk; raise a typed refusal when it is not accepted."""
        attempt = await self._load(visit_id, kiosk_id, self.services.clock.now())
        tries = self.services.pin_tries
        keep_until = attempt.visit.end_at + PIN_LOCK
        async with tries.guard(visit_id):  # one check at a time per visit: the count is exact
            now = self.services.clock.now()
            state = await tries.get(visit_id)
            if state.locked_until is not None and now >= state.locked_until:
                state = PinState(confirmed=state.confirmed)
            if state.locked_until is not None:
                await self._audit(kiosk_id, visit_id, "failure", "pin_locked", request_id)
                wait_s = int((state.locked_until - now).total_seconds()) + 1
                raise TooManyRequests(
                    f"too many wrong PINs; try again in {wait_s} s", code="pin_locked"
                )
            if attempt.pin_hash is None:
                await self._audit(kiosk_id, visit_id, "failure", "pin_not_set", request_id)
                await self._alert(attempt, "pin_not_set", "the person has no kiosk PIN set")
                logger.warning("visit %s: PIN required but the person has none", visit_id)
                raise Conflict("no PIN is set for this person; ask staff", code="pin_not_set")
            ok = await asyncio.to_thread(self.services.passwords.verify, attempt.pin_hash, pin)
            if ok:
                await tries.put(visit_id, PinState(confirmed=True), now=now, keep_until=keep_until)
                await self._audit(kiosk_id, visit_id, "success", None, request_id)
                return
            wrong = state.wrong + 1
            locked_until = now + PIN_LOCK if wrong >= MAX_WRONG_PINS else None
            await tries.put(
                visit_id,
                PinState(state.confirmed, wrong, locked_until),
                now=now,
                keep_until=keep_until,
            )
            if locked_until is not None:
                await self._audit(
                    kiosk_id, visit_id, "failure", "pin_locked", request_id, lock_started=True
                )
                await self._alert(attempt, "pin_locked", "wrong kiosk PIN entered too often")
                logger.warning("visit %s: kiosk PIN locked after %s tries", visit_id, wrong)
                raise TooManyRequests(
                    f"too many wrong PINs; try again in {int(PIN_LOCK.total_seconds())} s",
                    code="pin_locked",
                )
            await self._audit(kiosk_id, visit_id, "failure", "wrong_pin", request_id)
            left = MAX_WRONG_PINS - wrong
            raise Forbidden(
                f"wrong PIN; {left} tries left", code="wrong_pin", details={"tries_left": left}
            )

    async def _audit(
        self,
        kiosk_id: int,
        visit_id: int,
        outcome: str,
        code: str | None,
        request_id: str | None,
        *,
        lock_started: bool = False,
    ) -> None:
        actions = (
            ["kiosk.pin_confirm", "kiosk.pin_locked"] if lock_started else ["kiosk.pin_confirm"]
        )
        async with self.services.write() as session:
            now = self.services.clock.now()
            for name in actions:
                record = AuditRecord(
                    actor=f"kiosk:{kiosk_id}",
                    action=name,
                    outcome=outcome,
                    target=f"visit:{visit_id}",
                    request_id=request_id,
                    component="signaling",
                    details={"code": code} if code else None,
                )
                await self.services.audit.append(session, record, now)

    async def _alert(self, attempt: _Attempt, code: str, message: str) -> None:
        await self.alert(
            AlertMessage(
                code=code,
                visit_id=attempt.visit.id,
                kiosk_id=attempt.visit.kiosk_id,
                message=message,
                server_time=self.services.clock.now(),
            ),
            attempt.facility_id,
        )
