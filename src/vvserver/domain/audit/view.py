"""The audit log as administrators read it: newest first, filtered, within their scope.

Entries carry no facility column (the hashed content is fixed), so each entry's facility is
worked out from what it is about: ``details.facility_id`` when present, else the object of its
``target`` (``visit:12`` -> that visit's facility), else the facility of its actor (a staff
account or kiosk). A facility admin sees their facility's entries; an agency admin those of
the agency's facilities, plus entries with no facility whose actor or target account belongs
to the agency. Pages are read in bounded batches (``before_id`` continues where one stopped).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    Account,
    Approval,
    AuditEntry,
    Blackout,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Recording,
    Visit,
    VisitFlag,
    VisitMessage,
    VisitorBan,
)
from vvserver.domain.accounts.scope import Caller, facility_in_scope
from vvserver.domain.audit.chain import verify_chain
from vvserver.domain.errors import NotFound
from vvserver.domain.ids import parse_id
from vvserver.domain.recordings.search import day_bounds, local_zone
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

BATCH = 200
MAX_SCANNED = 5000  # rows read for one page at most; the page then ends early
ACCOUNT_ROLES = ("visitor", "officer", "facility_admin", "agency_admin")
_FACILITY_OF: dict[str, Any] = {
    "visit": Visit,
    "kiosk": Kiosk,
    "person": Person,
    "unit": HousingUnit,
    "recording": Recording,
    "approval": Approval,
    "ban": VisitorBan,
    "blackout": Blackout,
    "flag": VisitFlag,
    "message": VisitMessage,
}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    facility_id: int | None = None
    action: str | None = None  # exact, or a prefix ending with "."
    actor_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditItem:
    id: int
    entry: AuditEntry
    actor_id: int | None
    actor_email: str | None
    facility_id: int | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditItem]
    next_before_id: int | None


def _ref(text: str | None) -> tuple[str, int] | None:
    """``kind:123`` as (kind, 123); None for anything else."""
    if not text:
        return None
    kind, _, raw = text.partition(":")
    value = parse_id(raw)
    return None if value is None else (kind, value)


@dataclass
class _Lookups:
    objects: dict[str, dict[int, int]]  # kind -> id -> facility id
    accounts: dict[int, tuple[str, int | None, int | None]]  # id -> email, facility, agency
    agencies: dict[int, int]  # facility id -> agency id


async def _lookups(session: AsyncSession, entries: list[AuditEntry]) -> _Lookups:
    wanted: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        for ref in (_ref(entry.target), _ref(entry.actor)):
            if ref is not None:
                kind = "account" if ref[0] in ACCOUNT_ROLES else ref[0]
                wanted[kind].add(ref[1])
    objects: dict[str, dict[int, int]] = {}
    for kind, model in _FACILITY_OF.items():
        if wanted.get(kind):
            rows = await session.execute(
                select(model.id, model.facility_id).where(model.id.in_(wanted[kind]))
            )
            objects[kind] = {row[0]: row[1] for row in rows}
    accounts: dict[int, tuple[str, int | None, int | None]] = {}
    if wanted.get("account"):
        rows = await session.execute(
            select(Account.id, Account.email, Account.facility_id, Account.agency_id).where(
                Account.id.in_(wanted["account"])
            )
        )
        accounts = {row[0]: (row[1], row[2], row[3]) for row in rows}
    agencies = {
        row[0]: row[1] for row in await session.execute(select(Facility.id, Facility.agency_id))
    }
    return _Lookups(objects, accounts, agencies)


def _facility_of(entry: AuditEntry, lookups: _Lookups) -> int | None:
    given = (entry.details or {}).get("facility_id")
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    for ref in (_ref(entry.target), _ref(entry.actor)):
        if ref is None:
            continue
        kind, ref_id = ref
        if kind == "facility":
            return ref_id
        if kind in ACCOUNT_ROLES or kind == "account":
            account = lookups.accounts.get(ref_id)
            if account is not None and account[1] is not None:
                return account[1]
            continue
        found = lookups.objects.get(kind, {}).get(ref_id)
        if found is not None:
            return found
    return None


def _account_agencies(entry: AuditEntry, lookups: _Lookups) -> set[int]:
    found: set[int] = set()
    for ref in (_ref(entry.target), _ref(entry.actor)):
        if ref is not None and (ref[0] in ACCOUNT_ROLES or ref[0] == "account"):
            account = lookups.accounts.get(ref[1])
            if account is not None and account[2] is not None:
                found.add(account[2])
    return found


async def read_audit_log(services: Services, caller: Caller, query: AuditFilter) -> AuditPage:
    """One page of entries the caller may see, newest first."""
    principal = caller.principal
    if principal.role not in ("facility_admin", "agency_admin"):
        raise NotFound("no audit log")
    items: list[AuditItem] = []
    scanned = 0
    before = query.before_id
    exhausted = False
    async with services.read() as session:
        if query.facility_id is not None:
            await facility_in_scope(session, principal, query.facility_id)
        zone = await local_zone(session, principal, query.facility_id)
        low, high = day_bounds(zone, query.date_from, query.date_to)
        stmt = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if query.action is not None:
            stmt = stmt.where(
                AuditEntry.action.startswith(query.action, autoescape=True)
                if query.action.endswith(".")
                else AuditEntry.action == query.action
            )
        if query.actor_id is not None:
            stmt = stmt.where(
                AuditEntry.actor.in_([f"{role}:{query.actor_id}" for role in ACCOUNT_ROLES])
            )
        if low is not None:
            stmt = stmt.where(AuditEntry.at >= low)
        if high is not None:
            stmt = stmt.where(AuditEntry.at < high)
        while len(items) < query.limit and scanned < MAX_SCANNED:
            batch_stmt = stmt if before is None else stmt.where(AuditEntry.seq < before)
            batch = list(await session.scalars(batch_stmt.limit(BATCH)))
            if not batch:
                exhausted = True
                break
            lookups = await _lookups(session, batch)
            for entry in batch:
                scanned += 1
                before = entry.seq
                facility = _facility_of(entry, lookups)
                if principal.role == "facility_admin":
                    visible = facility == principal.facility_id
                elif facility is not None:
                    visible = lookups.agencies.get(facility) == principal.agency_id
                else:
                    visible = principal.agency_id in _account_agencies(entry, lookups)
                if not visible or (query.facility_id is not None and facility != query.facility_id):
                    continue
                actor = _ref(entry.actor)
                actor_id = actor[1] if actor is not None and actor[0] in ACCOUNT_ROLES else None
                account = lookups.accounts.get(actor_id) if actor_id is not None else None
                items.append(
                    AuditItem(
                        id=entry.seq,
                        entry=entry,
                        actor_id=actor_id,
                        actor_email=account[0] if account is not None else None,
                        facility_id=facility,
                    )
                )
                if len(items) >= query.limit:
                    break
            if len(batch) < BATCH and len(items) < query.limit:
                exhausted = True
                break
    return AuditPage(items, None if exhausted else before)


@dataclass(frozen=True, slots=True)
class AuditCheck:
    ok: bool
    checked: int
    problems: list[str]
    first_broken_id: int | None


async def verify_audit_log(services: Services, caller: Caller) -> AuditCheck:
    """Walk the whole hash chain and its anchor (as ``vvserver audit verify``); audited."""
    async with services.read() as session:
        result = await verify_chain(session, services.audit.anchor)
    problems = [] if result.ok or result.problem is None else [result.problem]
    if not result.ok:
        logger.error("audit chain check by %s failed: %s", caller.actor, result.problem)
    async with services.write() as session:
        await services.audit.append(
            session,
            caller.record(
                "audit.verify",
                outcome="success" if result.ok else "failure",
                details={
                    "checked": result.count,
                    "ok": result.ok,
                    "first_broken_seq": result.first_broken_seq,
                    "problem": result.problem,
                },
            ),
            services.clock.now(),
        )
    return AuditCheck(result.ok, result.count, problems, result.first_broken_seq)
