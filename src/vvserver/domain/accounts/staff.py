"""Staff accounts: agency and facility administrators create officers and administrators.

Agency admins manage staff anywhere in their agency (and may create other agency admins);
facility admins manage officers and facility admins of their own facility only.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Agency, Facility, MfaRecoveryCode
from vvserver.domain.accounts.email_links import normalise_email
from vvserver.domain.accounts.mfa import drop_pending_logins
from vvserver.domain.accounts.password_policy import check_password_policy, context_words
from vvserver.domain.accounts.principal import STAFF_ROLES, Principal
from vvserver.domain.accounts.revocation import end_sessions
from vvserver.domain.accounts.scope import Caller, administered_facility
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from vvserver.domain.notices.language import Language, language_of
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


async def _managed_staff(session: AsyncSession, principal: Principal, account_id: int) -> Account:
    """A staff account the caller manages (locked for update); others are 404."""
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
    return account


async def deactivate_staff(services: Services, caller: Caller, account_id: int) -> Account:
    """Switch the account off and end its sessions at once."""
    principal = caller.principal
    now = services.clock.now()
    async with services.write() as session:
        account = await _managed_staff(session, principal, account_id)
        if account.id == principal.account_id:
            raise Conflict("you cannot deactivate your own account", code="self_deactivation")
        if not account.active:
            raise Conflict("this account is already inactive", code="already_inactive")
        account.active = False
        await end_sessions(session, account.id, reason="deactivated")
        await caller.audit(services, session, "staff.deactivate", f"account:{account.id}", now)
    return account


async def reset_staff_mfa(services: Services, caller: Caller, account_id: int) -> Account:
    """An administrator's recovery for a colleague who lost their second factor: the TOTP
    secret and recovery codes are deleted, the sign-in lockout is lifted and every session and
    pending login of the account ends. If MFA is required for them they enrol again at their
    next sign-in. Check the person's identity (in person) before doing this."""
    principal = caller.principal
    now = services.clock.now()
    async with services.write() as session:
        account = await _managed_staff(session, principal, account_id)
        if account.id == principal.account_id:
            raise Conflict(
                "you cannot reset your own second factor; ask another administrator",
                code="self_mfa_reset",
            )
        had_factor = await _clear_factor(services, session, account)
        await caller.audit(
            services, session, "mfa.reset", f"account:{account.id}", now, had_factor=had_factor
        )
    return account


async def reset_mfa_by_operator(services: Services, email: str) -> Account:
    """``vvserver staff reset-mfa EMAIL``: the server operator's recovery when no administrator
    is left who could reset (e.g. the only agency admin lost their phone). Audited."""
    now = services.clock.now()
    async with services.write() as session:
        account = await session.scalar(
            select(Account).where(Account.email == normalise_email(email)).with_for_update()
        )
        if account is None or account.role not in STAFF_ROLES:
            raise NotFound("no staff account with this e-mail")
        had_factor = await _clear_factor(services, session, account)
        record = AuditRecord(
            actor="operator:cli",
            action="mfa.reset",
            outcome="success",
            target=f"account:{account.id}",
            component="cli",
            details={"had_factor": had_factor},
        )
        await services.audit.append(session, record, now)
    return account


async def _clear_factor(services: Services, session: AsyncSession, account: Account) -> bool:
    """Delete the account's TOTP secret and recovery codes, lift a lockout, end its sessions
    and pending logins. Returns whether it had a confirmed factor."""
    had_factor = account.mfa_enrolled_at is not None
    account.mfa_secret = None
    account.mfa_enrolled_at = None
    account.mfa_last_step = None
    account.failed_logins = 0
    account.locked_until = None
    await session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.account_id == account.id))
    await drop_pending_logins(session, account.id)
    await end_sessions(session, account.id, reason="mfa_reset")
    return had_factor


async def facility_admin_recipients(
    session: AsyncSession, facility: Facility
) -> list[tuple[str, Language]]:
    """Who hears about a facility's new approval requests, with each one's e-mail language: its
    active facility admins, or the agency's admins when the facility has none."""
    rows = await session.execute(
        select(Account.email, Account.language).where(
            Account.role == "facility_admin",
            Account.facility_id == facility.id,
            Account.active.is_(True),
        )
    )
    found = [(email, language_of(language)) for email, language in rows.all()]
    if found:
        return found
    rows = await session.execute(
        select(Account.email, Account.language).where(
            Account.role == "agency_admin",
            Account.agency_id == facility.agency_id,
            Account.active.is_(True),
        )
    )
    return [(email, language_of(language)) for email, language in rows.all()]
