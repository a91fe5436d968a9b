"""Approved-visitor lists: a visitor asks to visit a person; a facility administrator decides.

Statuses: requested -> approved | denied; approved -> revoked. A denied or revoked visitor may ask
again ``REQUEST_AGAIN_AFTER`` after the decision (the same row is reused: one per person+visitor).
Professional approvals (attorney with bar number, clergy) make the visits privileged.
A visitor names the person by the handle the directory gave them (``directory_handles``), never
by a database id, and learns nothing of the person before approval beyond what they typed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Approval, Facility, Person, Visit, VisitorBan
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    cancel_visits,
    reachable_facility_ids,
)
from vvserver.domain.accounts.staff import facility_admin_recipients
from vvserver.domain.errors import Conflict, InvalidInput, NotFound
from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import Phrase, mail
from vvserver.domain.notices.mail_text import text as text_of
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.people.bans import active_ban
from vvserver.domain.people.directory_handles import open_handle
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

APPROVAL_STATUSES = ("requested", "approved", "denied", "revoked")
PROFESSIONAL_KINDS = ("none", "attorney", "clergy")
REQUEST_AGAIN_AFTER = timedelta(days=30)


# Once approved, the visitor may know who the person is (name, id to book with).
PERSON_SHOWN_TO_VISITOR = ("approved", "revoked")


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    approval: Approval
    person: Person
    visitor: Account
    facility: Facility
    banned: bool

    @property
    def person_known_to_visitor(self) -> bool:
        return self.approval.status in PERSON_SHOWN_TO_VISITOR


async def _row(
    session: AsyncSession,
    approval: Approval,
    facility: Facility,
    visitor: Account,
    person: Person,
    now: datetime,
) -> ApprovalRow:
    banned = await active_ban(session, visitor.id, facility.id, now) is not None
    return ApprovalRow(approval, person, visitor, facility, banned)


async def _notify_admins(
    services: Services,
    session: AsyncSession,
    facility: Facility,
    person: Person,
    visitor: Account,
    approval: Approval,
    now: datetime,
) -> None:
    for email, language in await facility_admin_recipients(session, facility):
        kind = approval.professional
        professional = "" if kind == "none" else text_of(language, f"professional.{kind}")
        text = mail(
            language,
            "approval_requested",
            visitor=visitor.name,
            professional=professional,
            person=f"{person.first_name} {person.last_name}",
            booking_number=person.booking_number,
            relationship=approval.relationship,
            facility=facility.name,
            link=f"{services.settings.public_url}/admin/approvals",
        )
        queue_email(
            session,
            now,
            kind="approval_requested",
            to=email,
            subject=text.subject,
            body=text.body,
        )


async def request_approval(
    services: Services,
    caller: Caller,
    *,
    handle: str,
    relationship: str,
    professional: str,
    bar_number: str | None,
) -> ApprovalRow:
    if professional not in PROFESSIONAL_KINDS:
        raise InvalidInput("professional must be none, attorney or clergy", code="bad_professional")
    if professional == "attorney" and not bar_number:
        raise InvalidInput("attorneys must give their bar number", code="bar_number_required")
    if professional != "attorney" and bar_number:
        raise InvalidInput("a bar number is only for attorneys", code="bar_number_not_allowed")
    visitor_id = caller.principal.require_account_id()
    now = services.clock.now()
    person_id = open_handle(services.secret, handle, visitor_id=visitor_id, now=now)
    conflict = Conflict("you already asked to visit this person", code="approval_exists")
    async with services.write() as session:
        visitor = await session.get(Account, visitor_id, with_for_update=True)
        assert visitor is not None
        if visitor.email_verified_at is None:
            raise Conflict("confirm your e-mail address first", code="email_unverified")
        person = await session.get(Person, person_id)
        if person is None or person.status != "active":
            raise NotFound("no such person")
        facility = await session.get(Facility, person.facility_id)
        assert facility is not None
        if await active_ban(session, visitor.id, facility.id, now) is not None:
            raise Conflict("you may not visit at this facility", code="visitor_banned")
        approval = await session.scalar(
            select(Approval)
            .where(Approval.person_id == person.id, Approval.visitor_id == visitor.id)
            .with_for_update()
        )
        if approval is not None:
            if approval.status in ("requested", "approved"):
                raise conflict
            if approval.decided_at is not None and now - approval.decided_at < REQUEST_AGAIN_AFTER:
                again = approval.decided_at + REQUEST_AGAIN_AFTER
                raise Conflict(
                    f"you may ask again after {again.date().isoformat()}",
                    code="request_too_soon",
                    details={"retry_after": again.isoformat()},
                )
            approval.status = "requested"
            approval.facility_id = facility.id
            approval.reason = approval.decided_at = approval.decided_by = None
            approval.created_at = now
        else:
            approval = Approval(
                person_id=person.id,
                visitor_id=visitor.id,
                facility_id=facility.id,
                status="requested",
                created_at=now,
            )
            session.add(approval)
        approval.relationship = relationship
        approval.professional = professional
        approval.bar_number = bar_number
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent request on PostgreSQL
            raise conflict from exc
        await _notify_admins(services, session, facility, person, visitor, approval, now)
        await caller.audit(
            services,
            session,
            "approval.request",
            f"approval:{approval.id}",
            now,
            person_id=person.id,
            professional=professional,
        )
        return ApprovalRow(approval, person, visitor, facility, False)


async def list_approvals(
    services: Services,
    principal: Principal,
    *,
    status: str | None,
    person_id: int | None,
    facility_id: int | None,
    limit: int,
    offset: int,
) -> list[ApprovalRow]:
    """A visitor's own requests, or the approvals at the facilities a staff member can see."""
    conditions: list[ColumnElement[bool]] = []
    if principal.role == "visitor":
        conditions.append(Approval.visitor_id == principal.require_account_id())
    else:
        conditions.append(Approval.facility_id.in_(reachable_facility_ids(principal)))
    if status:
        conditions.append(Approval.status == status)
    if person_id is not None:
        conditions.append(Approval.person_id == person_id)
    if facility_id is not None:
        conditions.append(Approval.facility_id == facility_id)
    now = services.clock.now()
    async with services.read() as session:
        rows = (
            await session.execute(
                select(Approval, Person, Account, Facility)
                .join(Person, Person.id == Approval.person_id)
                .join(Account, Account.id == Approval.visitor_id)
                .join(Facility, Facility.id == Approval.facility_id)
                .where(*conditions)
                .order_by(Approval.created_at, Approval.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        banned: set[tuple[int, int]] = set()
        if rows:
            bans = await session.execute(
                select(VisitorBan.visitor_id, VisitorBan.facility_id).where(
                    VisitorBan.visitor_id.in_({row[0].visitor_id for row in rows}),
                    VisitorBan.lifted_at.is_(None),
                    VisitorBan.ends_at > now,
                )
            )
            banned = {(v, f) for v, f in bans.all()}
    return [ApprovalRow(a, p, v, f, (a.visitor_id, a.facility_id) in banned) for a, p, v, f in rows]


async def _administered_approval(
    session: AsyncSession, caller: Caller, approval_id: int
) -> tuple[Approval, Facility, Account, Person]:
    approval = await session.get(Approval, approval_id, with_for_update=True)
    if approval is None:
        raise NotFound("no such approval")
    facility = await administered_facility(session, caller.principal, approval.facility_id)
    visitor = await session.get(Account, approval.visitor_id)
    person = await session.get(Person, approval.person_id)
    assert visitor is not None
    assert person is not None
    return approval, facility, visitor, person


async def decide_approval(
    services: Services, caller: Caller, approval_id: int, *, approve: bool, reason: str | None
) -> ApprovalRow:
    """Approve (the visitor's e-mail and ID must be verified and no ban in force) or deny."""
    if not approve and not reason:
        raise InvalidInput("give the visitor a reason for the denial", code="reason_required")
    now = services.clock.now()
    async with services.write() as session:
        approval, facility, visitor, person = await _administered_approval(
            session, caller, approval_id
        )
        if approval.status != "requested":
            raise Conflict(f"this request is already {approval.status}", code="not_pending")
        if approve:
            if person.status != "active":
                raise Conflict(f"this person is {person.status}", code="person_not_active")
            if not visitor.active:
                raise Conflict("this visitor account is inactive", code="visitor_inactive")
            if visitor.email_verified_at is None:
                raise Conflict("the visitor's e-mail is not verified", code="email_unverified")
            if visitor.id_status != "verified":
                raise Conflict("the visitor's ID is not verified", code="id_not_verified")
            if await active_ban(session, visitor.id, facility.id, now) is not None:
                raise Conflict("the visitor is banned at this facility", code="visitor_banned")
        approval.status = "approved" if approve else "denied"
        approval.reason = reason
        approval.decided_by = caller.principal.account_id
        approval.decided_at = now
        who = f"{person.first_name} {person.last_name}"
        language = language_of(visitor.language)
        text = mail(
            language,
            "approval_approved" if approve else "approval_denied",
            name=visitor.name,
            person=who,
            facility=facility.name,
            reason=text_of(language, "approval.reason", reason=reason) if reason else "",
        )
        queue_email(
            session,
            now,
            kind="approval_decision",
            to=visitor.email,
            subject=text.subject,
            body=text.body,
        )
        await caller.audit(
            services,
            session,
            "approval.decide",
            f"approval:{approval.id}",
            now,
            decision=approval.status,
            reason=reason,
        )
        return await _row(session, approval, facility, visitor, person, now)


async def revoke_approval(
    services: Services, caller: Caller, approval_id: int, reason: str
) -> tuple[ApprovalRow, int]:
    """Take a visitor off the list; their booked visits with the person are cancelled."""
    now = services.clock.now()
    async with services.write() as session:
        approval, facility, visitor, person = await _administered_approval(
            session, caller, approval_id
        )
        if approval.status != "approved":
            raise Conflict(f"this approval is {approval.status}", code="not_approved")
        approval.status = "revoked"
        approval.reason = reason
        approval.decided_by = caller.principal.account_id
        approval.decided_at = now
        who = f"{person.first_name} {person.last_name}"
        cancelled = await cancel_visits(
            session,
            Visit.visitor_id == visitor.id,
            Visit.person_id == person.id,
            actor=caller.actor,
            reason=Phrase("reason.approval_withdrawn", {"person": who, "reason": reason}),
            now=now,
        )
        text = mail(
            language_of(visitor.language),
            "approval_revoked",
            name=visitor.name,
            person=who,
            facility=facility.name,
            reason=reason,
        )
        queue_email(
            session,
            now,
            kind="approval_revoked",
            to=visitor.email,
            subject=text.subject,
            body=text.body,
        )
        await caller.audit(
            services,
            session,
            "approval.revoke",
            f"approval:{approval.id}",
            now,
            reason=reason,
            cancelled_visits=cancelled,
        )
        return await _row(session, approval, facility, visitor, person, now), len(cancelled)
