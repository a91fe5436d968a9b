"""Credit for visits the facility side could not give in full, and the free rebooking offer.

A visit earns credit when it failed (kiosk offline, media or server fault: ``transition`` sets
``credit_flag``) or when it completed but the call was not two-way for longer than the
facility's ``lost_credit_seconds``. The visitor is e-mailed an offer to rebook for free: the
make-up visit (``makeup_for_visit_id``) does not count against the weekly limits.

How long the call was not two-way: the ledger records lost time per side (from a drop to the
reconnect or the end), so the exact figure is the union of the two sides' outages. Only the
per-side totals are stored; their sum equals the union whenever the outages do not overlap (the
usual case: one side's network drops), and only over-counts when both sides were down at once,
which points at the facility or the server and so errs on the family's side. The larger of the
two sides would miss a visit that lost 90 s on each side at different times: 3 minutes of a
call that was not two-way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Visit
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.notices.language import DEFAULT_LANGUAGE
from vvserver.domain.notices.mail_text import (
    Phrase,
    mail,
    minutes_phrase,
    minutes_text,
    render_reason,
    text,
)
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.domain.visits.views import load_view

logger = logging.getLogger(__name__)

# End states a credited visit can be rebooked from.
CREDITED_END_STATES = frozenset({"completed", "failed", "no_show", "terminated"})


def lost_seconds(visit: Visit) -> float:
    """Seconds the call was not two-way (both sides' lost time; see the module docstring)."""
    return visit.visitor_lost_s + visit.kiosk_lost_s


def connected_seconds(visit: Visit) -> float:
    """Seconds both sides were connected, at most: the shorter side's connected time."""
    return min(visit.visitor_connected_s, visit.kiosk_connected_s)


async def offer_credit(
    session: AsyncSession,
    services: Services,
    visit: Visit,
    reason: str | Phrase,
    now: datetime,
) -> None:
    """Flag ``visit`` for credit and e-mail its visitor a free rebooking, in the caller's write
    transaction (the visit row locked by the caller). ``reason`` is e-mailed in the visitor's
    language and audited in English."""
    visit.credit_flag = True
    visit.updated_at = now
    view = await load_view(session, visit)
    lost = lost_seconds(visit)
    language = view.visitor_language
    mail_text = mail(
        language,
        "visit_credit",
        name=view.visitor_name,
        person=view.person_name,
        span=view.local_span_text(language),
        reason=render_reason(reason, language),
        lost=text(language, "visit_credit.lost", lost=minutes_text(lost, language))
        if lost > 0
        else "",
        visit_id=visit.id,
        url=services.settings.public_url,
        when=view.local_start_text(language),
    )
    queue_email(
        session,
        now,
        kind="visit_credit",
        to=view.visitor_email,
        subject=mail_text.subject,
        body=mail_text.body,
    )
    english = render_reason(reason, DEFAULT_LANGUAGE)
    await services.audit.append(
        session,
        AuditRecord(
            actor="system:credit",
            action="visit.credit",
            outcome="success",
            target=f"visit:{visit.id}",
            component="visits",
            details={"reason": english, "lost_seconds": round(lost, 1)},
        ),
        now,
    )
    logger.info("visit %s credited (%s, %.0f s lost)", visit.id, english, lost)


async def credit_ended_visit(
    session: AsyncSession, services: Services, visit: Visit, now: datetime
) -> bool:
    """After ``visit`` reached its end state (and its last time accounting): offer credit when
    it failed, or when it completed with more lost time than the facility allows. True when
    an offer was made."""
    if visit.state == "failed":
        await offer_credit(session, services, visit, visit.end_reason or "the visit failed", now)
        return True
    if visit.state != "completed" or visit.credit_flag:
        return False
    lost = lost_seconds(visit)
    threshold = (await load_view(session, visit)).rules.lost_credit_seconds
    if lost <= threshold:
        return False
    reason = Phrase("reason.interrupted_for", {"lost": minutes_phrase(lost)})
    await offer_credit(session, services, visit, reason, now)
    return True


async def makeups_of(session: AsyncSession, visits: Sequence[Visit]) -> dict[int, int]:
    """Credited visit id -> the id of its make-up visit (not cancelled), for those rebooked.

    Only credited visits can have one, and a make-up belongs to the same visitor (the visitor
    index narrows the search; ``makeup_for_visit_id`` has none of its own).
    """
    credited = [v for v in visits if v.credit_flag]
    if not credited:
        return {}
    rows = await session.execute(
        select(Visit.makeup_for_visit_id, Visit.id)
        .where(
            Visit.visitor_id.in_({v.visitor_id for v in credited}),
            Visit.makeup_for_visit_id.in_([v.id for v in credited]),
            Visit.state != "cancelled",
        )
        .order_by(Visit.id)
    )
    return {int(original): int(makeup) for original, makeup in rows.all() if original is not None}
