"""An officer's live list: the visits in scope that are on now or coming up, and what changed.

Scope: officers and facility admins see their facility, agency admins their agency. Rows are
the active visits (scheduled, ready, live) that have not ended and start within
``LIVE_AHEAD``. Presence (kiosk online, participants joined) comes from the hub, so a kiosk
going offline shows at once; database changes (state, new bookings) show at the next refresh.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    ACTIVE_VISIT_STATES,
    Account,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
    VisitFlag,
)
from vvserver.domain.accounts.principal import Principal
from vvserver.signaling.hub import SignalingHub
from vvserver.signaling.protocol import LiveVisitOut

logger = logging.getLogger(__name__)

LIVE_AHEAD = timedelta(hours=12)
MAX_ROWS = 500


async def live_rows(
    session: AsyncSession, principal: Principal, hub: SignalingHub, now: datetime
) -> dict[int, LiveVisitOut]:
    flags = (
        select(func.count(VisitFlag.id))
        .where(VisitFlag.visit_id == Visit.id)
        .correlate(Visit)
        .scalar_subquery()
    )
    query = (
        select(
            Visit,
            HousingUnit.name,
            Kiosk.name,
            Person.first_name,
            Person.last_name,
            Account.name,
            flags,
        )
        .join(Facility, Facility.id == Visit.facility_id)
        .join(HousingUnit, HousingUnit.id == Visit.unit_id)
        .join(Kiosk, Kiosk.id == Visit.kiosk_id)
        .join(Person, Person.id == Visit.person_id)
        .join(Account, Account.id == Visit.visitor_id)
        .where(
            Visit.state.in_(ACTIVE_VISIT_STATES),
            Visit.end_at > now,
            Visit.start_at < now + LIVE_AHEAD,
        )
        .order_by(Visit.start_at, Visit.id)
        .limit(MAX_ROWS)
    )
    if principal.role == "agency_admin":
        query = query.where(Facility.agency_id == principal.agency_id)
    else:
        query = query.where(Visit.facility_id == principal.facility_id)
    rows = (await session.execute(query)).all()
    return {
        visit.id: LiveVisitOut(
            id=visit.id,
            state=visit.state,
            facility_id=visit.facility_id,
            unit_name=unit_name,
            kiosk_id=visit.kiosk_id,
            kiosk_name=kiosk_name,
            kiosk_online=hub.kiosk_online(visit.kiosk_id),
            person_name=f"{first} {last}",
            visitor_name=visitor_name,
            start_at=visit.start_at,
            end_at=visit.end_at,
            privileged=visit.privileged,
            visitor_connected=hub.participant_connected(visit.id, "visitor"),
            kiosk_connected=hub.participant_connected(visit.id, "kiosk"),
            visitor_media=hub.figures.state(visit.id, "visitor"),
            kiosk_media=hub.figures.state(visit.id, "kiosk"),
            visitor_quality=hub.figures.quality(visit.id, "visitor"),
            kiosk_quality=hub.figures.quality(visit.id, "kiosk"),
            flags=flag_count,
            visitor_lost_seconds=round(visit.visitor_lost_s),
            kiosk_lost_seconds=round(visit.kiosk_lost_s),
            visitor_losing=hub.figures.losing(visit.id, "visitor"),
            kiosk_losing=hub.figures.losing(visit.id, "kiosk"),
            visitor_media_flowing=hub.figures.flowing(visit.id, "visitor"),
            kiosk_media_flowing=hub.figures.flowing(visit.id, "kiosk"),
            visitor_cannot_connect=hub.figures.cannot_connect(visit.id, "visitor"),
            kiosk_cannot_connect=hub.figures.cannot_connect(visit.id, "kiosk"),
            on_demand=visit.on_demand,
        )
        for visit, unit_name, kiosk_name, first, last, visitor_name, flag_count in rows
    }


def diff_rows(
    before: dict[int, LiveVisitOut], after: dict[int, LiveVisitOut]
) -> tuple[list[LiveVisitOut], list[int]]:
    """(rows new or changed, ids gone), each in a stable order."""
    changed = [row for visit_id, row in after.items() if before.get(visit_id) != row]
    removed = sorted(visit_id for visit_id in before if visit_id not in after)
    return changed, removed
