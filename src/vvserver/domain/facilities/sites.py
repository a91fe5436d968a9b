"""An agency's facilities, their housing units and visiting rules."""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

from sqlalchemy import select

from vvserver.db.models import (
    Facility,
    HousingUnit,
)
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    check_timezone,
    facility_in_scope,
)
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.facilities.rules import VisitingRules, effective
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


logger = logging.getLogger(__name__)

_DAY_MINUTES = 24 * 60


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
    officer_mfa_required: bool | None = None,
) -> Facility:
    if timezone is not None:
        check_timezone(timezone)
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id, lock=True)
        changes: dict[str, str | bool] = {}
        if name is not None and name != facility.name:
            facility.name = changes["name"] = name
        if timezone is not None and timezone != facility.timezone:
            facility.timezone = changes["timezone"] = timezone
        if (
            officer_mfa_required is not None
            and officer_mfa_required != facility.officer_mfa_required
        ):
            facility.officer_mfa_required = changes["officer_mfa_required"] = officer_mfa_required
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
                check_rules(effective(rules.to_json(), unit.rules_override))
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
        check_rules(effective(facility.rules, override))
        unit.rules_override = override or None
        await caller.audit(
            services, session, "unit.rules", f"unit:{unit.id}", now, override=override
        )
    return unit, facility
