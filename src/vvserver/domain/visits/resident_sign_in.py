"""A resident says who they are at an idle kiosk, to ring one of their visitors (Visit now).

The resident types their booking number (and their PIN where the unit's rules ask for the PIN
at the kiosk, ``kiosk_pin_required``: the same rule and the same PIN as for taking a visit).
Only a person living in the kiosk's housing unit, active, can sign in there. Tries are rate
limited per kiosk (``SIGN_INS_PER_MIN``) and PIN tries per person (``PIN_TRIES_PER_MIN``),
counted cluster-wide where the rate limiter is Redis; every attempt is audited
(``kiosk.resident_sign_in``), the PIN never is.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select

from vvserver.db.models import Person
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.booking.availability_store import PersonContext, load_person
from vvserver.domain.errors import Conflict, DomainError, Forbidden, NotFound
from vvserver.domain.services import Services
from vvserver.domain.visits.on_demand import kiosk_unit

logger = logging.getLogger(__name__)

SIGN_INS_PER_MIN = 20
PIN_TRIES_PER_MIN = 5


async def sign_in_resident(
    services: Services,
    *,
    kiosk_id: int,
    booking_number: str,
    pin: str | None,
    request_id: str | None,
) -> PersonContext:
    """The person of ``booking_number`` in this kiosk's unit, PIN checked where required."""
    try:
        person = await _sign_in(services, kiosk_id, booking_number, pin)
    except DomainError as exc:
        await _audit(services, kiosk_id, None, "failure", exc.code, request_id)
        raise
    await _audit(services, kiosk_id, person.person_id, "success", None, request_id)
    return person


async def _sign_in(
    services: Services, kiosk_id: int, booking_number: str, pin: str | None
) -> PersonContext:
    await services.rate_limiter.hit("resident_sign_in", f"kiosk:{kiosk_id}", SIGN_INS_PER_MIN)
    async with services.read() as session:
        unit_id = await kiosk_unit(session, kiosk_id)
        row = (
            await session.execute(
                select(Person.id, Person.pin_hash).where(
                    Person.unit_id == unit_id,
                    Person.status == "active",
                    func.upper(Person.booking_number) == booking_number.strip().upper(),
                )
            )
        ).first()
        person = None if row is None else await load_person(session, row[0])
    if row is None or person is None:
        raise NotFound("no resident of this unit has that booking number", code="not_found")
    person_id, pin_hash = row
    rules = person.rules
    if not rules.on_demand_enabled:
        raise Conflict("calls without booking are not offered in this unit", code="on_demand_off")
    if not rules.kiosk_pin_required:
        return person
    if pin is None:
        raise Forbidden("enter your PIN too", code="pin_required")
    if pin_hash is None:
        raise Conflict("no PIN is set for this person; ask staff", code="pin_not_set")
    await services.rate_limiter.hit("resident_pin", f"person:{person_id}", PIN_TRIES_PER_MIN)
    if not await asyncio.to_thread(services.passwords.verify, pin_hash, pin):
        raise Forbidden("wrong PIN", code="wrong_pin")
    return person


async def _audit(
    services: Services,
    kiosk_id: int,
    person_id: int | None,
    outcome: str,
    code: str | None,
    request_id: str | None,
) -> None:
    details: dict[str, object] = {"code": code} if code else {}
    await services.audit_now(
        AuditRecord(
            actor=f"kiosk:{kiosk_id}",
            action="kiosk.resident_sign_in",
            outcome=outcome,
            target=f"person:{person_id}" if person_id is not None else None,
            request_id=request_id,
            component="signaling",
            details=details or None,
        )
    )
