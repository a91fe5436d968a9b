"""E-mail and calendar texts in the recipient's language.

The texts themselves live in ``mail_text_en`` and ``mail_text_es`` (one ``TEXTS`` table each, the
same keys and the same ``{placeholders}`` in both: a test compares them). Callers build the links
and the values; this module only picks the language's text and fills it in. Dates and times are
written with the language's own day and month names, never the process locale's.

A ``Phrase`` is a text to be rendered later, once per recipient: a reason composed by the server
(a ban, a transfer) that is stored on the visit in English and e-mailed in each visitor's language.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from vvserver.domain.notices import mail_text_en, mail_text_es
from vvserver.domain.notices.language import Language

CATALOGS: Mapping[Language, Mapping[str, str]] = {
    "en": mail_text_en.TEXTS,
    "es": mail_text_es.TEXTS,
}


def text(language: Language, key: str, **values: object) -> str:
    """The ``key`` text in ``language`` with its ``{placeholders}`` filled in."""
    return CATALOGS[language][key].format_map(values)


@dataclass(frozen=True, slots=True)
class MailText:
    subject: str
    body: str


def mail(language: Language, kind: str, **values: object) -> MailText:
    """The subject (``<kind>.subject``) and body (``<kind>.body``) of one e-mail."""
    return MailText(
        subject=text(language, f"{kind}.subject", **values),
        body=text(language, f"{kind}.body", **values),
    )


@dataclass(frozen=True, slots=True)
class Phrase:
    """A catalog text with its values (plain values, or a ``Phrase`` or ``When``
    rendered in the same language), rendered in whichever language a reader needs."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)

    def render(self, language: Language) -> str:
        filled = {
            name: value.render(language) if isinstance(value, Phrase | When) else value
            for name, value in self.values.items()
        }
        return text(language, self.key, **filled)


@dataclass(frozen=True, slots=True)
class When:
    """A moment shown in a facility's zone, in the reader's language (``date.<style>``)."""

    moment: datetime
    timezone: str
    style: str = "zone"

    def render(self, language: Language) -> str:
        return local_date_time(self.moment, self.timezone, language, self.style)


def render_reason(reason: str | Phrase, language: Language) -> str:
    """A reason typed by a person is kept as typed; one the server composed is translated."""
    if isinstance(reason, Phrase):
        return reason.render(language)
    known = f"reason.{reason}"
    return text(language, known) if known in CATALOGS[language] else reason


def _parts(moment: datetime, language: Language) -> dict[str, object]:
    names = CATALOGS[language]
    weekday = names[f"weekday.{moment.weekday()}"]
    month = names[f"month.{moment.month}"]
    offset = moment.strftime("%z")
    return {
        "weekday": weekday,
        "weekday_short": names[f"weekday_short.{moment.weekday()}"],
        "day": moment.day,
        "day2": f"{moment.day:02d}",
        "month": month,
        "month_short": names[f"month_short.{moment.month}"],
        "year": moment.year,
        "time": f"{moment:%H:%M}",
        "zone": moment.tzname() or "",
        "utc_offset": f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC",
    }


def date_time(moment: datetime, language: Language, style: str = "long") -> str:
    """``moment`` (aware, already in the zone to show) as the catalog's ``date.<style>``:
    ``long`` "Tuesday 02 March 2027, 19:55", ``short`` "Tue 02 Mar 2027 19:55", ``zone`` the
    long form with the zone's abbreviation, ``day`` "Tuesday, March 2, 2027", ``time`` "19:55"."""
    return text(language, f"date.{style}", **_parts(moment, language))


def local_date_time(moment: datetime, timezone: str, language: Language, style: str) -> str:
    return date_time(moment.astimezone(ZoneInfo(timezone)), language, style)


def span_text(start: datetime, end: datetime, timezone: str, language: Language) -> str:
    """A visit's local span with its zone: "Tuesday 02 March 2027, 19:55 to 20:00 (America/
    Chicago, UTC-06:00)"; ``start`` and ``end`` already in that zone."""
    return text(
        language,
        "date.span",
        start=date_time(start, language),
        end=f"{end:%H:%M}",
        timezone=timezone,
        utc_offset=_parts(start, language)["utc_offset"],
    )


def minutes_phrase(seconds: float) -> Phrase:
    """Whole minutes, rounded up, with the plural form: "1 minute", "3 minutos"."""
    minutes = math.ceil(seconds / 60)
    return Phrase("minutes.one" if minutes == 1 else "minutes.other", {"count": minutes})


def minutes_text(seconds: float, language: Language) -> str:
    return minutes_phrase(seconds).render(language)
