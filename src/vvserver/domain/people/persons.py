"""People in custody: the roster, unit moves, release, transfer, visiting suspension, kiosk PIN.

Any change that makes booked visits impossible cancels them with a reason the visitor can read
(the staff member's own reason is kept in the audit log only, since it may be disciplinary).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Approval, Facility, Person, Visit
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    cancel_visits,
    facility_in_scope,
    unit_of,
)
from vvserver.domain.errors import Conflict, InvalidInput, NotFound
from vvserver.domain.notices.mail_text import Phrase, When
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

PERSON_STATUSES = ("active", "released", "transferred")


def normalise_booking_number(raw: str) -> str:
    return raw.strip().upper()


@dataclass(frozen=True, slots=True)
class PersonChange:
    person: Person
    cancelled_visits: int


async def _hash_pin(services: Services, pin: str | None) -> str | None:
    if pin is None:
        return None
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise InvalidInput("a PIN is 4 to 8 digits", code="invalid_pin")
    return await asyncio.to_thread(services.passwords.hash, pin)


async def person_in_scope(
    session: AsyncSession, principal: Principal, person_id: int, *, lock: bool = False
) -> Person:
    person = await session.get(Person, person_id, with_for_update=lock)
    if person is None or not principal.can_reach_facility(person.facility_id, person.agency_id):
        raise NotFound("no such person")
    return person


async def _administered_person(session: AsyncSession, caller: Caller, person_id: int) -> Person:
    person = await person_in_scope(session, caller.principal, person_id, lock=True)
    await administered_facility(session, caller.principal, person.facility_id)
    return person


def _require_active(person: Person) -> None:
    if person.status != "active":
        raise Conflict(f"this person is {person.status}", code="person_not_active")


async def create_person(
    services: Services,
    caller: Caller,
    facility_id: int,
    *,
    unit_id: int,
    booking_number: str,
    first_name: str,
    last_name: str,
    pin: str | None,
) -> Person:
    booking_number = normalise_booking_number(booking_number)
    pin_hash = await _hash_pin(services, pin)
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        unit = await unit_of(session, facility, unit_id)
        conflict = Conflict(
            "this booking number is already used in the agency", code="booking_number_taken"
        )
        taken = await session.scalar(
            select(Person.id).where(
                Person.agency_id == facility.agency_id, Person.booking_number == booking_number
            )
        )
        if taken is not None:
            raise conflict
        person = Person(
            agency_id=facility.agency_id,
            facility_id=facility.id,
            unit_id=unit.id,
            booking_number=booking_number,
            first_name=first_name,
            last_name=last_name,
            status="active",
            pin_hash=pin_hash,
            created_at=now,
        )
        session.add(person)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent insert on PostgreSQL
            raise conflict from exc
        await caller.audit(
            services,
            session,
            "person.create",
            f"person:{person.id}",
            now,
            booking_number=booking_number,
            unit_id=unit.id,
        )
    return person


async def list_persons(
    services: Services,
    principal: Principal,
    facility_id: int,
    *,
    name: str | None,
    booking_number: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Person]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        query = select(Person).where(Person.facility_id == facility.id)
        if booking_number:
            query = query.where(Person.booking_number == normalise_booking_number(booking_number))
        if name:
            escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            query = query.where(
                or_(
                    Person.last_name.ilike(pattern, escape="\\"),
                    Person.first_name.ilike(pattern, escape="\\"),
                )
            )
        if status:
            query = query.where(Person.status == status)
        query = query.order_by(Person.last_name, Person.first_name, Person.id)
        return list((await session.scalars(query.limit(limit).offset(offset))).all())


async def get_person(services: Services, principal: Principal, person_id: int) -> Person:
    async with services.read() as session:
        return await person_in_scope(session, principal, person_id)


async def update_person(
    services: Services,
    caller: Caller,
    person_id: int,
    *,
    first_name: str | None,
    last_name: str | None,
    unit_id: int | None,
) -> PersonChange:
    """Rename, or move within the facility; visits booked at the old unit's kiosks are cancelled."""
    now = services.clock.now()
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        changes: dict[str, object] = {}
        if first_name is not None and first_name != person.first_name:
            person.first_name = changes["first_name"] = first_name
        if last_name is not None and last_name != person.last_name:
            person.last_name = changes["last_name"] = last_name
        cancelled: list[int] = []
        if unit_id is not None and unit_id != person.unit_id:
            _require_active(person)
            facility = await session.get(Facility, person.facility_id)
            assert facility is not None
            unit = await unit_of(session, facility, unit_id)
            changes["unit"] = [person.unit_id, unit.id]
            cancelled = await cancel_visits(
                session,
                Visit.person_id == person.id,
                Visit.unit_id == person.unit_id,
                actor=caller.actor,
                reason=Phrase("reason.moved_unit", {"first_name": person.first_name}),
                now=now,
            )
            person.unit_id = unit.id
        await caller.audit(
            services,
            session,
            "person.update",
            f"person:{person.id}",
            now,
            changes=changes,
            cancelled_visits=cancelled,
        )
    return PersonChange(person, len(cancelled))


async def release_person(
    services: Services, caller: Caller, person_id: int, reason: str | None
) -> PersonChange:
    now = services.clock.now()
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        _require_active(person)
        person.status = "released"
        cancelled = await cancel_visits(
            session,
            Visit.person_id == person.id,
            actor=caller.actor,
            reason=Phrase("reason.released", {"person": f"{person.first_name} {person.last_name}"}),
            now=now,
        )
        await caller.audit(
            services,
            session,
            "person.release",
            f"person:{person.id}",
            now,
            reason=reason,
            cancelled_visits=cancelled,
        )
    return PersonChange(person, len(cancelled))


async def transfer_person(
    services: Services,
    caller: Caller,
    person_id: int,
    *,
    facility_id: int | None,
    unit_id: int | None,
    reason: str,
) -> PersonChange:
    """Move to another facility of the same agency (stays active, approvals follow), or, with
    no facility, out of the agency's custody (status ``transferred``). Booked visits are cancelled.
    """
    now = services.clock.now()
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        _require_active(person)
        source = person.facility_id
        if facility_id is None:
            if unit_id is not None:
                raise InvalidInput("a unit needs a facility", code="unit_without_facility")
            person.status = "transferred"
        else:
            target = await session.get(Facility, facility_id)
            if target is None or target.agency_id != person.agency_id:
                raise NotFound("no such facility in this agency")
            if target.id == source:
                raise InvalidInput("use a unit move within the same facility", code="same_facility")
            if unit_id is None:
                raise InvalidInput(
                    "choose the housing unit at the new facility", code="unit_required"
                )
            unit = await unit_of(session, target, unit_id)
            person.facility_id, person.unit_id = target.id, unit.id
            approvals = await session.scalars(
                select(Approval).where(Approval.person_id == person.id).with_for_update()
            )
            for approval in approvals:
                approval.facility_id = target.id
        cancelled = await cancel_visits(
            session,
            Visit.person_id == person.id,
            Visit.facility_id == source,
            actor=caller.actor,
            reason=Phrase(
                "reason.transferred", {"person": f"{person.first_name} {person.last_name}"}
            ),
            now=now,
        )
        await caller.audit(
            services,
            session,
            "person.transfer",
            f"person:{person.id}",
            now,
            from_facility=source,
            to_facility=facility_id,
            unit_id=unit_id,
            reason=reason,
            cancelled_visits=cancelled,
        )
    return PersonChange(person, len(cancelled))


async def suspend_visiting(
    services: Services, caller: Caller, person_id: int, *, until: datetime, reason: str
) -> PersonChange:
    """Suspend visiting until ``until``; visits starting before then are cancelled."""
    now = services.clock.now()
    if until <= now:
        raise InvalidInput("a suspension must end in the future", code="invalid_period")
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        _require_active(person)
        facility = await session.get(Facility, person.facility_id)
        assert facility is not None
        person.visiting_suspended_until = until
        cancelled = await cancel_visits(
            session,
            Visit.person_id == person.id,
            Visit.start_at < until,
            actor=caller.actor,
            reason=Phrase(
                "reason.suspended",
                {
                    "person": f"{person.first_name} {person.last_name}",
                    "until": When(until, facility.timezone),
                },
            ),
            now=now,
        )
        await caller.audit(
            services,
            session,
            "person.suspend",
            f"person:{person.id}",
            now,
            until=until.isoformat(),
            reason=reason,
            cancelled_visits=cancelled,
        )
    return PersonChange(person, len(cancelled))


async def unsuspend_visiting(services: Services, caller: Caller, person_id: int) -> Person:
    now = services.clock.now()
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        if person.visiting_suspended_until is None or person.visiting_suspended_until <= now:
            raise Conflict("visiting is not suspended", code="not_suspended")
        person.visiting_suspended_until = None
        await caller.audit(services, session, "person.unsuspend", f"person:{person.id}", now)
    return person


async def set_pin(services: Services, caller: Caller, person_id: int, pin: str) -> None:
    pin_hash = await _hash_pin(services, pin)
    now = services.clock.now()
    async with services.write() as session:
        person = await _administered_person(session, caller, person_id)
        person.pin_hash = pin_hash
        await caller.audit(services, session, "person.set_pin", f"person:{person.id}", now)
