"""Cancelling one visit: by its visitor until the lead time, by staff any time with a reason."""

from __future__ import annotations

import logging
from datetime import timedelta

from vvserver.db.models import ACTIVE_VISIT_STATES
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, InvalidInput, NotFound
from vvserver.domain.notices.mail_text import mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.join_links import locked_visit
from vvserver.domain.visits.states import transition
from vvserver.domain.visits.views import VisitView, load_view, visit_calendar_text

logger = logging.getLogger(__name__)


async def cancel_visit(
    services: Services,
    principal: Principal,
    visit_id: int,
    reason: str | None,
    audit: AuditRecord | None,
) -> VisitView:
    """Cancel a visit: its visitor until ``cancel_lead_minutes`` before start, staff any time.

    Staff must give a reason; the visitor is e-mailed and the action audited.
    """
    now = services.clock.now()
    async with services.write() as session:
        visit = await locked_visit(session, visit_id)
        view = await load_view(session, visit)
        if principal.role == "visitor":
            if visit.visitor_id != principal.account_id:
                raise NotFound("no such visit")
        else:
            principal.ensure_facility(visit.facility_id, view.agency_id)
            if not reason:
                raise InvalidInput("staff must give a reason to cancel", code="reason_required")
        if visit.state not in ACTIVE_VISIT_STATES:
            raise Conflict(f"this visit is {visit.state}", code="visit_not_active")
        if principal.role == "visitor":
            lead = view.rules.cancel_lead_minutes
            if now > visit.start_at - timedelta(minutes=lead):
                raise Conflict(
                    f"visits can be cancelled until {lead} minutes before they start",
                    code="too_late_to_cancel",
                )
        transition(
            session,
            visit,
            "cancelled",
            actor=principal.actor,
            reason=reason or "cancelled by the visitor",
            now=now,
        )
        visit.join_token_hash = None
        if principal.is_staff:
            language = view.visitor_language
            mail_text = mail(
                language,
                "visit_cancelled",
                name=view.visitor_name,
                person=view.person_name,
                span=view.local_span_text(language),
                reason=reason,
                when=view.local_start_text(language),
            )
            queue_email(
                session,
                now,
                kind="visit_cancelled",
                to=view.visitor_email,
                subject=mail_text.subject,
                body=mail_text.body,
                ics=visit_calendar_text(
                    view, now=now, public_url=services.settings.public_url, language=language
                ),
            )
        if audit is not None:
            await services.audit.append(session, audit, now)
    return view
