"""Facility-wide visitor bans: they block approval and booking and cancel future visits."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Visit, VisitorBan
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    cancel_visits,
    facility_in_scope,
)
from vvserver.domain.errors import Conflict, InvalidInput, NotFound
from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import Phrase, When, mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.people.visitors import visitor_in_scope
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


async def active_ban(
    session: AsyncSession, visitor_id: int, facility_id: int, now: datetime
) -> VisitorBan | None:
    """The ban that keeps this visitor out of this facility now, if any."""
    return await session.scalar(
        select(VisitorBan)
        .where(
            VisitorBan.visitor_id == visitor_id,
            VisitorBan.facility_id == facility_id,
            VisitorBan.lifted_at.is_(None),
            VisitorBan.ends_at > now,
        )
        .order_by(VisitorBan.ends_at.desc())
        .limit(1)
    )


async def create_ban(
    services: Services,
    caller: Caller,
    facility_id: int,
    *,
    visitor_id: int,
    reason: str,
    ends_at: datetime,
) -> tuple[VisitorBan, int]:
    """Bar a visitor from a facility; their booked visits there are cancelled."""
    now = services.clock.now()
    if ends_at <= now:
        raise InvalidInput("a ban must end in the future", code="invalid_period")
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        visitor = await visitor_in_scope(session, caller.principal, visitor_id)
        await session.refresh(visitor, with_for_update=True)
        if await active_ban(session, visitor.id, facility.id, now) is not None:
            raise Conflict("this visitor is already banned here", code="already_banned")
        ban = VisitorBan(
            facility_id=facility.id,
            visitor_id=visitor.id,
            reason=reason,
            ends_at=ends_at,
            created_by=caller.principal.require_account_id(),
            created_at=now,
        )
        session.add(ban)
        await session.flush()
        until = When(ends_at, facility.timezone)
        cancelled = await cancel_visits(
            session,
            Visit.visitor_id == visitor.id,
            Visit.facility_id == facility.id,
            actor=caller.actor,
            reason=Phrase(
                "reason.ban", {"facility": facility.name, "until": until, "reason": reason}
            ),
            now=now,
        )
        language = language_of(visitor.language)
        text = mail(
            language,
            "visitor_ban",
            name=visitor.name,
            facility=facility.name,
            until=until.render(language),
            reason=reason,
        )
        queue_email(
            session,
            now,
            kind="visitor_ban",
            to=visitor.email,
            subject=text.subject,
            body=text.body,
        )
        await caller.audit(
            services,
            session,
            "ban.create",
            f"ban:{ban.id}",
            now,
            visitor_id=visitor.id,
            ends_at=ends_at.isoformat(),
            reason=reason,
            cancelled_visits=cancelled,
        )
    return ban, len(cancelled)


async def list_bans(
    services: Services, principal: Principal, facility_id: int, *, active_only: bool
) -> list[tuple[VisitorBan, Account]]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        query = (
            select(VisitorBan, Account)
            .join(Account, Account.id == VisitorBan.visitor_id)
            .where(VisitorBan.facility_id == facility.id)
        )
        if active_only:
            query = query.where(
                VisitorBan.lifted_at.is_(None), VisitorBan.ends_at > services.clock.now()
            )
        rows = await session.execute(query.order_by(VisitorBan.created_at.desc(), VisitorBan.id))
        return [(ban, account) for ban, account in rows.all()]


async def lift_ban(
    services: Services, caller: Caller, ban_id: int, reason: str | None
) -> VisitorBan:
    now = services.clock.now()
    async with services.write() as session:
        ban = await session.get(VisitorBan, ban_id, with_for_update=True)
        if ban is None:
            raise NotFound("no such ban")
        facility = await administered_facility(session, caller.principal, ban.facility_id)
        if ban.lifted_at is not None or ban.ends_at <= now:
            raise Conflict("this ban is no longer in force", code="ban_not_active")
        ban.lifted_at = now
        visitor = await session.get(Account, ban.visitor_id)
        assert visitor is not None
        text = mail(
            language_of(visitor.language),
            "visitor_ban_lifted",
            name=visitor.name,
            facility=facility.name,
        )
        queue_email(
            session,
            now,
            kind="visitor_ban_lifted",
            to=visitor.email,
            subject=text.subject,
            body=text.body,
        )
        await caller.audit(services, session, "ban.lift", f"ban:{ban.id}", now, reason=reason)
    return ban
