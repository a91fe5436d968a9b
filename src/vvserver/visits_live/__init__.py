"""Live visits: the bridge between the media relay (no database) and the core service.

`VisitMedia` opens a visit's media room from the database (rules, privileged flag, clock),
answers participants and monitors, and turns the room's events into visit state changes,
connection-time accounting, the `Recording` row and audit entries.
"""

from __future__ import annotations

from vvserver.visits_live.figures import MediaMetrics, ParticipantQuality, VisitQuality
from vvserver.visits_live.recording_rows import adopt_recovered_recordings
from vvserver.visits_live.service import MAX_REASON_CHARS, VisitMedia

__all__ = [
    "MAX_REASON_CHARS",
    "MediaMetrics",
    "ParticipantQuality",
    "VisitMedia",
    "VisitQuality",
    "adopt_recovered_recordings",
]
