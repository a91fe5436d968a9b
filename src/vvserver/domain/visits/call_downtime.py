"""Lost time while no server ran a visit's call: a crash, a restart, a stop before the end.

While a call is open its ledger is written to the visit row every second: the connected and
lost seconds up to `ledger_at`, and which sides were in the call then (`visitor_in_call`,
`kiosk_in_call`: connected, or already losing time). When the server stops, those sides
lose the time from `ledger_at` until their media reaches a server again. Start-up
reconciliation counts the downtime (`count_downtime`, keeping the ledger open); the room that
reopens the call counts on from there until each side's media returns; a visit that is never
resumed closes its ledger at its end. Nothing is lost before the slot's start (sides waiting
in the waiting room when the server stopped lose time from the start on).
"""

from __future__ import annotations

import logging
from datetime import datetime

from vvserver.db.models import Visit

logger = logging.getLogger(__name__)


def count_downtime(visit: Visit, until: datetime, *, keep_open: bool) -> float:
    """Add the time from `ledger_at` to `until` to the lost time of the sides that were in
    the call; returns the seconds per side. `keep_open`: the call may still resume (the
    ledger then runs from `until`); else the ledger is closed."""
    since = visit.ledger_at
    if since is None:
        return 0.0
    seconds = max(0.0, (until - max(since, visit.start_at)).total_seconds())
    sides = [
        side
        for side, in_call in (("visitor", visit.visitor_in_call), ("kiosk", visit.kiosk_in_call))
        if in_call
    ]
    if visit.visitor_in_call:
        visit.visitor_lost_s += seconds
    if visit.kiosk_in_call:
        visit.kiosk_lost_s += seconds
    if keep_open and sides:
        visit.ledger_at = max(since, until)
    else:
        visit.ledger_at = None
        visit.visitor_in_call = visit.kiosk_in_call = False
    if sides and seconds:
        logger.info("visit %s: %.1f s of downtime lost by %s", visit.id, seconds, sides)
    return seconds if sides else 0.0
