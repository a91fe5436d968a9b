"""Hang up the call of a visit that was ended outside the media layer.

Staff cancellations, blackouts, releases, the scheduler's no-show and overrun jobs all end
visits in the database; `Services.write` then publishes a `VisitEndedEvent`. A participant who
is waiting in the call is told why, and the recording is finished.
"""

from __future__ import annotations

import logging

from vvserver.domain.visits.bus import VisitEndedEvent, VisitEventBus
from vvserver.visits_live.service import VisitMedia

logger = logging.getLogger(__name__)

_MESSAGES = {
    "cancelled": "the visit was cancelled",
    "no_show": "the visit ended: the other side did not join",
    "failed": "the visit could not take place; it will be credited",
    "completed": "the visit's time is over",
    "terminated": "ended by the facility",
}


def hang_up_message(event: VisitEndedEvent) -> str:
    message = _MESSAGES.get(event.state, "the visit has ended")
    if event.state == "cancelled" and event.reason:
        message = f"{message}: {event.reason}"
    return message


async def hang_up_ended_visits(media: VisitMedia, events: VisitEventBus) -> None:
    """Runs for the life of the app; one bad event is logged, never fatal."""
    queue = events.subscribe()
    try:
        while True:
            event = await queue.get()
            if not isinstance(event, VisitEndedEvent) or media.rooms.get(event.visit_id) is None:
                continue
            try:
                await media.hang_up(event.visit_id, hang_up_message(event))
            except Exception:
                logger.exception("visit %s: could not hang up the ended call", event.visit_id)
    finally:
        events.unsubscribe(queue)
