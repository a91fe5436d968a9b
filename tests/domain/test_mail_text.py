"""The e-mail texts: both languages say the same things with the same blanks, and dates are
written with the language's own names whatever the process locale."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from vvserver.domain.notices.language import language_of
from vvserver.domain.notices.mail_text import (
    CATALOGS,
    Phrase,
    When,
    date_time,
    mail,
    minutes_text,
    render_reason,
    span_text,
)


def blanks(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_spanish_has_every_english_text_with_the_same_blanks() -> None:
    english, spanish = CATALOGS["en"], CATALOGS["es"]
    assert set(english) == set(spanish)
    for key, template in english.items():
        if key.startswith("date."):
            continue  # each language writes a date its own way, from the same parts
        assert blanks(template) == blanks(spanish[key]), key
        if not key.startswith(("weekday", "month", "minutes.")):
            assert template != spanish[key], f"{key} is not translated"


def test_every_e_mail_has_a_subject_and_a_body_in_both_languages() -> None:
    kinds = {key.rsplit(".", 1)[0] for key in CATALOGS["en"] if key.endswith(".subject")}
    assert {"verify_email", "visit_booked", "visit_reminder", "visit_credit"} <= kinds
    for kind in kinds:
        assert f"{kind}.body" in CATALOGS["en"], kind


def test_dates_in_each_language() -> None:
    moment = datetime(2027, 3, 2, 19, 5, tzinfo=UTC)
    assert date_time(moment, "en") == "Tuesday 02 March 2027, 19:05"
    assert date_time(moment, "es") == "martes 2 de marzo de 2027, 19:05"
    assert date_time(moment, "en", "short") == "Tue 02 Mar 2027 19:05"
    assert date_time(moment, "es", "day") == "martes, 2 de marzo de 2027"
    end = datetime(2027, 3, 2, 19, 35, tzinfo=UTC)
    assert span_text(moment, end, "UTC", "es") == (
        "martes 2 de marzo de 2027, 19:05 a 19:35 (UTC, UTC+00:00)"
    )
    # In the facility's zone: 19:05 UTC is 13:05 in Chicago (CST, UTC-6).
    assert When(moment, "America/Chicago").render("es") == "martes 2 de marzo de 2027, 13:05 CST"


def test_plurals_and_reasons() -> None:
    assert minutes_text(60, "en") == "1 minute"
    assert minutes_text(61, "es") == "2 minutos"
    assert minutes_text(30, "es") == "1 minuto"
    reason = Phrase("reason.released", {"person": "Luis Moreno"})
    assert reason.render("es") == "Luis Moreno ya no está bajo custodia aquí"
    assert render_reason(reason, "en") == "Luis Moreno is no longer in custody here"
    # A reason the server stores as a code-like text is translated; one a person typed is not.
    assert render_reason("kiosk offline", "es") == "el quiosco estaba desconectado"
    assert render_reason("water main repair", "es") == "water main repair"


def test_a_user_value_with_braces_is_written_as_it_is() -> None:
    text = mail("es", "approval_denied", name="{x}", person="A {b}", facility="F", reason="")
    assert "Hola, {x}:" in text.body
    assert "a A {b} en F" in text.body


def test_unknown_languages_read_as_english() -> None:
    assert language_of("es") == "es"
    assert language_of(None) == "en"
    assert language_of("fr") == "en"
