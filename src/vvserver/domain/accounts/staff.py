"""Staff accounts: agency and facility administrators create officers and administrators.

Agency admins manage staff anywhere in their agency (and may create other agency admins);
facility admins manage officers and facility admins of their own facility only.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Agency, Facility
from vvserver.domain.accounts.email_links import normalise_email
from vvserver.domain.accounts.password_policy import check_password_policy, context_words
from vvserver.domain.accounts.principal import STAFF_ROLES, Principal
from vvserver.domain.accounts.revocation import end_sessions
from vvserver.domain.accounts.scope import Caller, administered_facility
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

FACILITY_ROLES = ("officer", "facility_admin")


async def create_staff(
    services: Services,
    caller: Caller,
    *,
    email: str,
    name: str,
    role: str,
    facility_id: int | None,
    password: str,
) -> Account:
    principal = caller.principal
    if role not in STAFF_ROLES:
        raise InvalidInput("role must be officer, facility_admin or agency_admin", code="bad_role")
    if role == "agency_admin":
        if principal.role != "agency_admin":
            raise Forbidden("only agency administrators create agency administrators")
        if facility_id is not None:
            raise InvalidInput(
                "agency administrators have no facility", code="facility_not_allowed"
            )
    elif facility_id is None:
        raise InvalidInput("officers and facility admins need a facility", code="facility_required")
    email = normalise_email(email)
    async with services.read() as session:
        agency_id = principal.agency_id
        names: list[str] = []
        if facility_id is not None:
            facility = await administered_facility(session, principal, facility_id)
            agency_id = facility.agency_id
            names.append(facility.name)
        agency = await session.get(Agency, agency_id) if agency_id is not None else None
        if agency is not None:
            names.append(agency.name)
    check_password_policy(password, context_words(email=email, names=names))
    password_hash = await asyncio.to_thread(services.passwords.hash, password)
    now = services.clock.now()
    conflict = Conflict("an account with this e-mail already exists", code="email_taken")
    async with services.write() as session:
        agency_id = principal.agency_id
        if facility_id is not None:
            facility = await administered_facility(session, principal, facility_id)
            agency_id = facility.agency_id
        if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
            raise conflict
        account = Account(
            email=email,
            password_hash=password_hash,
            role=role,
            agency_id=agency_id,
            facility_id=facility_id,
            name=name,
            active=True,
            failed_logins=0,
            created_at=now,
            id_status="none",
        )
        session.add(account)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise conflict from exc
        await caller.audit(
            services,
            session,
            "staff.create",
            f"account:{account.id}",
            now,
            role=role,
            facility_id=facility_id,
            email=email,
        )
    return account


def _staff_scope(principal: Principal) -> list[ColumnElement[bool]]:
    if principal.role == "agency_admin":
        return [Account.agency_id == principal.agency_id]
    return [Account.facility_id == principal.facility_id, Account.role.in_(FACILITY_ROLES)]


async def list_staff(
    services: Services, principal: Principal, *, facility_id: int | None, include_inactive: bool
) -> list[Account]:
    query = select(Account).where(Account.role.in_(STAFF_ROLES), *_staff_scope(principal))
    if facility_id is not None:
        query = query.where(Account.facility_id == facility_id)
    if not include_inactive:
        query = query.where(Account.active.is_(True))
    async with services.read() as session:
        rows = await session.scalars(query.order_by(Account.name, Account.id).limit(1000))
        return list(rows.all())


async def deactivate_staff(services: Services, caller: Caller, account_id: int) -> Account:
    """Switch the account off and end its sessions at once."""
    principal = caller.principal
    now = services.clock.now()
    async with services.write() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        if (
            account is None
            or account.role not in STAFF_ROLES
            or (principal.role == "agency_admin" and account.agency_id != principal.agency_id)
            or (
                principal.role != "agency_admin"
                and (account.facility_id != principal.facility_id or account.role == "agency_admin")
            )
        ):
            raise NotFound("no such staff account")
        if account.id == principal.account_id:
            raise Conflict("you cannot deactivate your own account", code="self_deactivation")
        if not account.active:
            raise Conflict("this account is already inactive", code="already_inactive")
        account.active = False
        await end_sessions(session, account.id, reason="deactivated")
        await caller.audit(services, session, "staff.deactivate", f"account:{account.id}", now)
    return account


async def facility_admin_emails(session: AsyncSession, facility: Facility) -> list[str]:
    """Who hears about a facility's new approval requests: its active facility admins, or the
    agency's admins when the facility has none."""
    rows = await session.scalars(
        select(Account.email).where(
            Account.role == "facility_admin",
            Account.facility_id == facility.id,
            Account.active.is_(True),
        )
    )
    emails = list(rows.all())
    if emails:
        return emails
    rows = await session.scalars(
        select(Account.email).where(
            Account.role == "agency_admin",
            Account.agency_id == facility.agency_id,
            Account.active.is_(True),
        )
    )
    return list(rows.all())
