"""Effective visiting rules for every housing unit, loaded once per scheduler pass.

Facilities and units are small tables (hundreds of rows), so a pass reads them whole and groups
units by the value a job needs (e.g. ``join_window_minutes``). A job then runs one indexed,
bounded query per distinct value instead of one per unit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Facility, HousingUnit
from vvserver.domain.facilities.rules import VisitingRules, effective

logger = logging.getLogger(__name__)

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class UnitGroup:
    """Units sharing one rule value; ``unit_ids`` is None when every unit shares it."""

    value: int
    unit_ids: tuple[int, ...] | None


class RuleBook:
    def __init__(
        self,
        unit_rules: dict[int, VisitingRules],
        facility_zones: dict[int, ZoneInfo],
        facility_names: dict[int, str],
    ) -> None:
        self._unit_rules = unit_rules
        self._facility_zones = facility_zones
        self._facility_names = facility_names

    @classmethod
    async def load(cls, session: AsyncSession) -> RuleBook:
        facilities = (await session.execute(select(Facility))).scalars().all()
        units = (await session.execute(select(HousingUnit))).scalars().all()
        facility_rules: dict[int, VisitingRules] = {}
        zones: dict[int, ZoneInfo] = {}
        for facility in facilities:
            facility_rules[facility.id] = _parse(facility.rules, f"facility {facility.id}")
            try:
                zones[facility.id] = ZoneInfo(facility.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                logger.warning(
                    "facility %s has an unknown timezone %r", facility.id, facility.timezone
                )
                zones[facility.id] = _UTC
        unit_rules: dict[int, VisitingRules] = {}
        facility_json = {facility.id: facility.rules for facility in facilities}
        for unit in units:
            base = facility_rules.get(unit.facility_id, VisitingRules())
            try:
                unit_rules[unit.id] = effective(
                    facility_json.get(unit.facility_id), unit.rules_override
                )
            except (TypeError, ValueError, KeyError) as exc:
                logger.warning(
                    "unit %s has unusable rules_override (%s); using facility's", unit.id, exc
                )
                unit_rules[unit.id] = base
        names = {f.id: f.name for f in facilities}
        return cls(unit_rules, zones, names)

    def for_unit(self, unit_id: int) -> VisitingRules:
        return self._unit_rules.get(unit_id) or VisitingRules()

    def zone(self, facility_id: int) -> ZoneInfo:
        return self._facility_zones.get(facility_id, _UTC)

    def facility_name(self, facility_id: int) -> str:
        return self._facility_names.get(facility_id, "the facility")

    def groups(self, value_of: Callable[[VisitingRules], int]) -> list[UnitGroup]:
        """Units grouped by one rule value, largest value first."""
        by_value: dict[int, list[int]] = {}
        for unit_id, rules in self._unit_rules.items():
            by_value.setdefault(int(value_of(rules)), []).append(unit_id)
        if len(by_value) <= 1:
            value = next(iter(by_value), int(value_of(VisitingRules())))
            return [UnitGroup(value, None)]
        return [
            UnitGroup(value, tuple(sorted(ids)))
            for value, ids in sorted(by_value.items(), reverse=True)
        ]


def _parse(data: dict[str, object] | None, owner: str) -> VisitingRules:
    try:
        return VisitingRules.from_json(data)
    except (TypeError, ValueError, KeyError) as exc:
        logger.warning("%s has unusable rules (%s); using the defaults", owner, exc)
        return VisitingRules()
