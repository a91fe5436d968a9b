"""An agency's facilities, housing units, kiosks, visiting rules and blackouts.

Also home of the two helpers the other roster modules share: loading an object within the
caller's scope (foreign objects are 404) and cancelling active visits with a visitor-facing reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    Account,
    Blackout,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
)
from vvserver.domain.audit import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.principal import STAFF_ROLES, Principal
from vvserver.domain.rules import VisitingRules
from vvserver.domain.secrets import new_token, token_hash
from vvserver.domain.visits import transition
from vvserver.notify.outbox import queue_email
from vvserver.services import Services

logger = logging.getLogger(__name__)

CANCELLABLE_STATES = ("scheduled", "ready")
MAX_BLACKOUT = timedelta(days=366)
_DAY_MINUTES = 24 * 60


class Recorder(Protocol):
    """``RequestContext.record``: builds an audit record with the caller and request id."""

    def __call__(
        self,
        action: str,
        outcome: str = ...,
        target: str | None = ...,
        details: dict[str, Any] | None = ...,
        actor: str | None = ...,
    ) -> AuditRecord: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts (their scope) and how their actions are written to the audit log."""

    principal: Principal
    record: Recorder

    @property
    def actor(self) -> str:
        return self.principal.actor

    async def audit(
        self,
        services: Services,
        session: AsyncSession,
        action: str,
        target: str,
        now: datetime,
        **details: Any,
    ) -> None:
        record = self.record(action, target=target, details=details or None)
        await services.audit.append(session, record, now)


# --------------------------------------------------------------------------- shared helpers


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> ZoneInfo:
    if name not in _known_zones():
        raise InvalidInput(f"unknown IANA time zone {name!r}", code="unknown_timezone")
    return ZoneInfo(name)


def local_time_text(moment: datetime, timezone: str) -> str:
    """A visitor-facing wall-clock rendering of ``moment`` in the facility's time zone."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%A %d %B %Y, %H:%M %Z")


def check_rules(rules: VisitingRules) -> VisitingRules:
    """Cross-field checks the per-field bounds of the API models cannot express."""
    if rules.lead_min_minutes >= rules.lead_max_days * _DAY_MINUTES:
        raise InvalidInput(
            "the minimum booking lead must be shorter than the maximum", code="invalid_rules"
        )
    if rules.no_show_minutes > rules.slot_minutes:
        raise InvalidInput("no-show wait must not exceed the slot length", code="invalid_rules")
    if any(w >= rules.slot_minutes * 60 for w in rules.warning_seconds):
        raise InvalidInput("end-of-visit warnings must fall inside a slot", code="invalid_rules")
    by_day: dict[int, list[tuple[int, int]]] = {}
    for window in rules.windows:
        start = window.start.hour * 60 + window.start.minute
        end = window.end.hour * 60 + window.end.minute or _DAY_MINUTES
        by_day.setdefault(window.weekday, []).append((start, end))
    for spans in by_day.values():
        spans.sort()
        for (_, prev_end), (start, _) in pairwise(spans):
            if start < prev_end:
                raise InvalidInput("visiting windows overlap", code="invalid_rules")
    return rules


def reachable_facility_ids(principal: Principal) -> Select[int]:
    """The ids of the facilities a staff member may see, as a subquery (empty for others)."""
    query = select(Facility.id)
    if principal.role == "agency_admin":
        return query.where(Facility.agency_id == principal.agency_id)
    if principal.role in STAFF_ROLES:
        return query.where(Facility.id == principal.facility_id)
    return query.where(false())


async def facility_in_scope(
    session: AsyncSession, principal: Principal, facility_id: int, *, lock: bool = False
) -> Facility:
    facility = await session.get(Facility, facility_id, with_for_update=lock)
    if facility is None:
        raise NotFound("no such facility")
    principal.ensure_facility(facility.id, facility.agency_id)
    return facility


async def administered_facility(
    session: AsyncSession, principal: Principal, facility_id: int, *, lock: bool = False
) -> Facility:
    facility = await facility_in_scope(session, principal, facility_id, lock=lock)
    principal.ensure_admin_of(facility.id, facility.agency_id)
    return facility


async def unit_of(session: AsyncSession, facility: Facility, unit_id: int) -> HousingUnit:
    unit = await session.get(HousingUnit, unit_id)
    if unit is None or unit.facility_id != facility.id:
        raise InvalidInput("that housing unit is not in this facility", code="unit_not_in_facility")
    return unit


async def cancel_visits(
    session: AsyncSession,
    *conditions: ColumnElement[bool],
    actor: str,
    reason: str,
    now: datetime,
) -> list[int]:
    """Cancel the scheduled/ready visits matching ``conditions`` that have not ended yet.

    ``reason`` is shown to the visitor (stored on the visit and e-mailed). Returns the visit ids.
    """
    rows = (
        await session.execute(
            select(Visit, Account, Person, Facility)
            .join(Account, Account.id == Visit.visitor_id)
            .join(Person, Person.id == Visit.person_id)
            .join(Facility, Facility.id == Visit.facility_id)
            .where(Visit.state.in_(CANCELLABLE_STATES), Visit.end_at > now, *conditions)
            .order_by(Visit.start_at, Visit.id)
            .with_for_update(of=Visit)
        )
    ).all()
    for visit, visitor, person, facility in rows:
        transition(session, visit, "cancelled", actor=actor, reason=reason, now=now)
        when = local_time_text(visit.start_at, facility.timezone)
        queue_email(
            session,
            now,
            kind="visit_cancelled",
            to=visitor.email,
            subject=f"Video visit cancelled: {when}",
            body=(
                f"Hello {visitor.name},\n\nyour video visit with {person.first_name} "
                f"{person.last_name} at {facility.name} on {when} has been cancelled.\n\n"
                f"Reason: {reason}\n"
            ),
        )
    return [visit.id for visit, *_ in rows]


# --------------------------------------------------------------------------- facilities


async def create_facility(
    services: Services, caller: Caller, *, name: str, timezone: str, rules: VisitingRules
) -> Facility:
    principal = caller.principal
    if principal.role != "agency_admin" or principal.agency_id is None:
        raise Forbidden("agency administrators only")
    check_timezone(timezone)
    check_rules(rules)
    now = services.clock.now()
    async with services.write() as session:
        facility = Facility(
            agency_id=principal.agency_id,
            name=name,
            timezone=timezone,
            rules=rules.to_json(),
            created_at=now,
        )
        session.add(facility)
        await session.flush()
        await caller.audit(
            services, session, "facility.create", f"facility:{facility.id}", now, name=name
        )
    return facility


async def list_facilities(
    services: Services, principal: Principal, name_contains: str | None
) -> list[Facility]:
    """Staff see their facility (agency admins: their agency); visitors may search them all."""
    query = select(Facility).order_by(Facility.name, Facility.id)
    if principal.role == "agency_admin":
        query = query.where(Facility.agency_id == principal.agency_id)
    elif principal.role != "visitor":
        query = query.where(Facility.id == principal.facility_id)
    if name_contains:
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Facility.name.ilike(f"%{escaped}%", escape="\\"))
    async with services.read() as session:
        return list((await session.scalars(query.limit(200))).all())


async def get_facility(services: Services, principal: Principal, facility_id: int) -> Facility:
    async with services.read() as session:
        if principal.role == "visitor":
            facility = await session.get(Facility, facility_id)
            if facility is None:
                raise NotFound("no such facility")
            return facility
        return await facility_in_scope(session, principal, facility_id)


async def update_facility(
    services: Services,
    caller: Caller,
    facility_id: int,
    *,
    name: str | None,
    timezone: str | None,
) -> Facility:
    if timezone is not None:
        check_timezone(timezone)
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id, lock=True)
        changes: dict[str, str] = {}
        if name is not None and name != facility.name:
            facility.name = changes["name"] = name
        if timezone is not None and timezone != facility.timezone:
            facility.timezone = changes["timezone"] = timezone
        await caller.audit(
            services, session, "facility.update", f"facility:{facility.id}", now, **changes
        )
    return facility


async def set_facility_rules(
    services: Services, caller: Caller, facility_id: int, rules: VisitingRules
) -> Facility:
    """Replace the facility's rules; each unit's override must still make a consistent set."""
    check_rules(rules)
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id, lock=True)
        units = await session.scalars(
            select(HousingUnit).where(HousingUnit.facility_id == facility.id)
        )
        for unit in units:
            try:
                check_rules(rules.merged(unit.rules_override))
            except InvalidInput as exc:
                raise InvalidInput(
                    f"with these rules, unit {unit.name}'s override is inconsistent: {exc.message}",
                    code="invalid_rules",
                ) from exc
        facility.rules = rules.to_json()
        await caller.audit(
            services,
            session,
            "facility.rules",
            f"facility:{facility.id}",
            now,
            rules=facility.rules,
        )
    return facility


# --------------------------------------------------------------------------- housing units


async def create_unit(
    services: Services, caller: Caller, facility_id: int, name: str
) -> tuple[HousingUnit, Facility]:
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id, lock=True)
        taken = await session.scalar(
            select(HousingUnit.id).where(
                HousingUnit.facility_id == facility.id, HousingUnit.name == name
            )
        )
        if taken is not None:
            raise Conflict("a unit with this name already exists here", code="unit_name_taken")
        unit = HousingUnit(facility_id=facility.id, name=name)
        session.add(unit)
        await session.flush()
        await caller.audit(services, session, "unit.create", f"unit:{unit.id}", now, name=name)
    return unit, facility


async def list_units(
    services: Services, principal: Principal, facility_id: int
) -> list[HousingUnit]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        rows = await session.scalars(
            select(HousingUnit)
            .where(HousingUnit.facility_id == facility.id)
            .order_by(HousingUnit.name, HousingUnit.id)
        )
        return list(rows.all())


def effective_rules(facility: Facility, unit: HousingUnit) -> VisitingRules:
    return VisitingRules.from_json(facility.rules).merged(unit.rules_override)


async def set_unit_rules(
    services: Services, caller: Caller, unit_id: int, changes: dict[str, Any]
) -> tuple[HousingUnit, Facility]:
    """Merge ``changes`` into the unit's override; a key whose value is None is cleared."""
    now = services.clock.now()
    async with services.write() as session:
        unit = await session.get(HousingUnit, unit_id, with_for_update=True)
        if unit is None:
            raise NotFound("no such unit")
        facility = await administered_facility(session, caller.principal, unit.facility_id)
        override = dict(unit.rules_override or {})
        for key, value in changes.items():
            if value is None:
                override.pop(key, None)
            else:
                override[key] = value
        check_rules(VisitingRules.from_json(facility.rules).merged(override))
        unit.rules_override = override or None
        await caller.audit(
            services, session, "unit.rules", f"unit:{unit.id}", now, override=override
        )
    return unit, facility


# --------------------------------------------------------------------------- kiosks


def _kiosk_token(kiosk: Kiosk) -> str:
    """A device token ``k{id}.{secret}``; only its SHA-256 is stored."""
    token = f"k{kiosk.id}.{new_token()}"
    kiosk.credential_hash = token_hash(token)
    return token


async def create_kiosk(
    services: Services, caller: Caller, facility_id: int, *, unit_id: int, name: str
) -> tuple[Kiosk, str]:
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        unit = await unit_of(session, facility, unit_id)
        kiosk = Kiosk(
            facility_id=facility.id,
            unit_id=unit.id,
            name=name,
            credential_hash="",
            enabled=True,
            created_at=now,
        )
        session.add(kiosk)
        await session.flush()
        token = _kiosk_token(kiosk)
        await caller.audit(
            services, session, "kiosk.create", f"kiosk:{kiosk.id}", now, unit_id=unit.id, name=name
        )
    return kiosk, token


async def list_kiosks(services: Services, principal: Principal, facility_id: int) -> list[Kiosk]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        rows = await session.scalars(
            select(Kiosk).where(Kiosk.facility_id == facility.id).order_by(Kiosk.name, Kiosk.id)
        )
        return list(rows.all())


async def _administered_kiosk(session: AsyncSession, principal: Principal, kiosk_id: int) -> Kiosk:
    kiosk = await session.get(Kiosk, kiosk_id, with_for_update=True)
    if kiosk is None:
        raise NotFound("no such kiosk")
    await administered_facility(session, principal, kiosk.facility_id)
    return kiosk


async def rotate_kiosk(services: Services, caller: Caller, kiosk_id: int) -> tuple[Kiosk, str]:
    """Issue a new device token; the old one stops working at once."""
    now = services.clock.now()
    async with services.write() as session:
        kiosk = await _administered_kiosk(session, caller.principal, kiosk_id)
        token = _kiosk_token(kiosk)
        await caller.audit(services, session, "kiosk.rotate", f"kiosk:{kiosk.id}", now)
    return kiosk, token


async def update_kiosk(
    services: Services, caller: Caller, kiosk_id: int, *, name: str | None, enabled: bool | None
) -> Kiosk:
    now = services.clock.now()
    async with services.write() as session:
        kiosk = await _administered_kiosk(session, caller.principal, kiosk_id)
        changes: dict[str, Any] = {}
        if name is not None and name != kiosk.name:
            kiosk.name = changes["name"] = name
        if enabled is not None and enabled != kiosk.enabled:
            kiosk.enabled = changes["enabled"] = enabled
        await caller.audit(services, session, "kiosk.update", f"kiosk:{kiosk.id}", now, **changes)
    return kiosk


# --------------------------------------------------------------------------- blackouts


async def create_blackout(
    services: Services,
    caller: Caller,
    facility_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    unit_id: int | None,
) -> tuple[Blackout, int]:
    """Close the facility (or one unit) for a time; covered active visits are cancelled."""
    now = services.clock.now()
    if ends_at <= starts_at:
        raise InvalidInput("a blackout must end after it starts", code="invalid_period")
    if ends_at <= now:
        raise InvalidInput("this blackout is already over", code="invalid_period")
    if ends_at - starts_at > MAX_BLACKOUT:
        raise InvalidInput("a blackout may last at most 366 days", code="invalid_period")
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        if unit_id is not None:
            await unit_of(session, facility, unit_id)
        blackout = Blackout(
            facility_id=facility.id,
            unit_id=unit_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=caller.principal.require_account_id(),
            created_at=now,
        )
        session.add(blackout)
        await session.flush()
        covered = [
            Visit.facility_id == facility.id,
            Visit.start_at < ends_at,
            Visit.end_at > starts_at,
        ]
        if unit_id is not None:
            covered.append(Visit.unit_id == unit_id)
        cancelled = await cancel_visits(
            session, *covered, actor=caller.actor, reason=reason, now=now
        )
        await caller.audit(
            services,
            session,
            "blackout.create",
            f"blackout:{blackout.id}",
            now,
            unit_id=unit_id,
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
            cancelled_visits=cancelled,
        )
    return blackout, len(cancelled)


async def list_blackouts(
    services: Services, principal: Principal, facility_id: int, *, include_past: bool
) -> list[Blackout]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        query = select(Blackout).where(Blackout.facility_id == facility.id)
        if not include_past:
            query = query.where(Blackout.ends_at > services.clock.now())
        rows = await session.scalars(query.order_by(Blackout.starts_at, Blackout.id).limit(500))
        return list(rows.all())


async def delete_blackout(services: Services, caller: Caller, blackout_id: int) -> None:
    """Reopen the period. Visits it cancelled stay cancelled (visitors book again)."""
    now = services.clock.now()
    async with services.write() as session:
        blackout = await session.get(Blackout, blackout_id, with_for_update=True)
        if blackout is None:
            raise NotFound("no such blackout")
        await administered_facility(session, caller.principal, blackout.facility_id)
        await session.delete(blackout)
        await caller.audit(services, session, "blackout.delete", f"blackout:{blackout_id}", now)
