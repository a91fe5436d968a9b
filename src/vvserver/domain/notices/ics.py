"""iCalendar (RFC 5545) files for visits: one VEVENT, times in UTC, CRLF lines folded at 75 octets.

Times are written in UTC ("Z" form) so every calendar shows the visit at the right instant without
needing the facility's VTIMEZONE; the facility-local time and zone are repeated in the description
for people reading the file as text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

CRLF = "\r\n"
_MAX_OCTETS = 75
PRODID = "-//vvserver//Video Visitation//EN"


@dataclass(frozen=True, slots=True)
class CalendarVisit:
    """What a calendar entry for a visit shows; all datetimes aware."""

    visit_id: int
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str
    cancelled: bool = False
    url: str | None = None


def escape_text(value: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11): backslash, semicolon, comma and newlines."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def utc_stamp(moment: datetime) -> str:
    """DATE-TIME in UTC form, e.g. ``20270314T070000Z``."""
    if moment.tzinfo is None:
        raise ValueError("calendar times must be aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def fold_line(line: str) -> str:
    """Fold a content line into CRLF + space continuations of at most 75 octets each.

    Never splits a UTF-8 sequence: a character goes to the next line whole when it would not fit.
    """
    if line.isascii():
        if len(line) <= _MAX_OCTETS:
            return line
        rest = line[_MAX_OCTETS:]
        step = _MAX_OCTETS - 1
        chunks = [line[:_MAX_OCTETS]] + [rest[i : i + step] for i in range(0, len(rest), step)]
        return (CRLF + " ").join(chunks)
    parts: list[str] = []
    current: list[str] = []
    used = 0
    limit = _MAX_OCTETS
    for char in line:
        size = len(char.encode())
        if used + size > limit:
            parts.append("".join(current))
            current, used = [], 0
            limit = _MAX_OCTETS - 1  # continuation lines start with one space
        current.append(char)
        used += size
    parts.append("".join(current))
    return (CRLF + " ").join(parts)


def uid_domain(public_url: str) -> str:
    host = urlsplit(public_url).hostname
    return host or "vvserver.invalid"


def visit_calendar(visit: CalendarVisit, *, now: datetime, public_url: str) -> str:
    """A complete VCALENDAR text for ``visit`` (CRLF line ends, folded)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:CANCEL" if visit.cancelled else "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:visit-{visit.visit_id}@{uid_domain(public_url)}",
        f"DTSTAMP:{utc_stamp(now)}",
        f"DTSTART:{utc_stamp(visit.start)}",
        f"DTEND:{utc_stamp(visit.end)}",
        f"SUMMARY:{escape_text(visit.summary)}",
        f"DESCRIPTION:{escape_text(visit.description)}",
        f"LOCATION:{escape_text(visit.location)}",
        f"STATUS:{'CANCELLED' if visit.cancelled else 'CONFIRMED'}",
        f"SEQUENCE:{1 if visit.cancelled else 0}",
        "TRANSP:OPAQUE",
    ]
    if visit.url is not None:
        lines.append(f"URL:{visit.url}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold_line(line) + CRLF for line in lines)


def unfold(text: str) -> list[str]:
    """Content lines of a calendar text with folding undone (for readers and tests)."""
    return text.replace(CRLF + " ", "").replace(CRLF + "\t", "").split(CRLF)[:-1]
