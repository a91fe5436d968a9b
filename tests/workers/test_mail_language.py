"""Every kind of e-mail reaches an English and a Spanish account in their own language.

A Spanish-speaking mother (visitor2, who chose Spanish) and an English-speaking visitor go through
what makes the server write to them: signing up, a password reset, a lock-out, approval requests
and decisions, ID checks, bookings, moves, cancellations, reminders, credit, bans, changes to the
person they visit, and a standing weekly visit's skipped week and its end; a facility admin who
chose Spanish gets the new-request e-mail in Spanish, the other in English. Everything goes
through the real outbox and mailer to a real SMTP server
(aiosmtpd); each message is read back as a mail client would: subject and body in the right
language, the links open real pages, and the .ics is in the same language with the right times
and join link.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, ApiUser, World, add_visit, build_world
from tests.store_helpers import ManualClock
from tests.workers.smtp_support import Mailbox
from vvserver.app import build_services, create_app
from vvserver.db.models import Account, Visit
from vvserver.domain.booking.credit import credit_ended_visit
from vvserver.domain.notices.ics import unfold
from vvserver.domain.services import Services
from vvserver.notify.mailer import mailer_pass
from vvserver.scheduling.loop import scheduler_pass

NOW = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)  # Monday 07:00 in New York (facility A)
TUE_10 = "2027-01-05T10:00:00-05:00"
TUE_11 = "2027-01-05T11:00:00-05:00"
TUE_12 = "2027-01-05T12:00:00-05:00"
TUE_1230 = "2027-01-05T12:30:00-05:00"
PUBLIC_URL = "http://127.0.0.1:8080"
HOUR = timedelta(hours=1)
KIOSK = {"visitor": "a1-1", "visitor2": "a1-2"}  # two visits at one time: one kiosk each

# Words that only one of the two languages uses: a Spanish e-mail has none of the English ones.
ENGLISH = re.compile(r"\b(Hello|your|visit with|Reason|the link|booked|cancelled)\b")
SPANISH = re.compile(r"\b(Hola|su|visita|Motivo|enlace|reservada|cancelada)\b")


@dataclass
class Jail:
    services: Services
    world: World
    client: TestClient[Any, Any]
    mailbox: Mailbox
    clock: ManualClock
    seen: int = 0
    users: dict[str, ApiUser] = field(default_factory=dict)

    async def user(self, key: str) -> ApiUser:
        if key not in self.users:
            self.users[key] = await ApiUser.sign_in(self.client, self.world.emails[key])
        return self.users[key]

    async def sent(self) -> list[EmailMessage]:
        """Run the mailer; the messages the SMTP server received since the last call."""
        await mailer_pass(self.services)
        messages = self.mailbox.messages()[self.seen :]
        self.seen += len(messages)
        return messages


@pytest.fixture
async def jail(
    tmp_path: Path, sqlite_url: str, smtp_server: tuple[Mailbox, int], aiohttp_client: AiohttpClient
) -> AsyncIterator[Jail]:
    mailbox, port = smtp_server
    settings = make_settings(
        tmp_path / "data",
        sqlite_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_username="vv-mailer",
        smtp_password="mail-secret",
        mail_from="Visits <visits@jail.example>",
    )
    services = build_services(settings, passwords=fast_passwords())
    clock = ManualClock(NOW)
    services.clock = clock
    world = await build_world(services)
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    jail = Jail(services, world, client, mailbox, clock)
    # visitor2 reads Spanish: she says so on her profile.
    resp = await (await jail.user("visitor2")).patch("/api/me", json={"language": "es"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["language"] == "es"
    yield jail
    await services.db.close()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")  # SMTP carries CRLF line ends


def calendar_of(message: EmailMessage) -> list[str]:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "visit.ics"
    text = attachment.get_content()
    assert isinstance(text, str)
    return unfold(text)


def to(messages: list[EmailMessage], email: str) -> EmailMessage:
    [message] = [m for m in messages if m["To"] == email]
    return message


def assert_in_language(message: EmailMessage, language: str, subject: str, *phrases: str) -> None:
    """The subject is ``subject``; the body says each phrase and no word of the other language."""
    body = body_of(message)
    # A subject longer than a header line is folded after "Subject:"; unfolding leaves the
    # fold's space in front, which mail clients drop.
    assert message["Subject"].lstrip() == subject, message["Subject"]
    for phrase in phrases:
        assert phrase in body, f"{phrase!r} not in:\n{body}"
    other = ENGLISH if language == "es" else SPANISH
    for text in (message["Subject"], body):
        found = other.search(text)
        assert found is None, f"{found.group(0)!r} of the other language in {language}:\n{text}"


async def assert_links_open_pages(jail: Jail, message: EmailMessage) -> list[str]:
    """Every link in the body opens a page of this server; returns the links."""
    links = re.findall(re.escape(PUBLIC_URL) + r"/[^\s<>\"']+", body_of(message))
    for link in links:
        path = urlsplit(link).path
        resp = await jail.client.get(path)
        assert resp.status == 200, f"{link} answers {resp.status}"
        assert resp.content_type == "text/html", link
    return links


async def test_account_e_mails_are_written_in_the_accounts_language(jail: Jail) -> None:
    client = jail.client
    for email, language in (("ana@example.net", "es"), ("bob@example.net", "en")):
        resp = await client.post(
            "/api/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "name": email.split("@")[0].title(),
                "date_of_birth": "1985-02-03",
                "phone": "+1 555 0199",
                "language": language,
            },
        )
        assert resp.status == 202, await resp.text()
    sent = await jail.sent()
    ana, bob = to(sent, "ana@example.net"), to(sent, "bob@example.net")
    assert_in_language(
        ana,
        "es",
        "Confirme su dirección de correo electrónico",
        "Hola, Ana:",
        "El enlace es válido durante 3 días.",
    )
    assert_in_language(
        bob, "en", "Confirm your e-mail address", "Hello Bob,", "The link is valid for 3 days."
    )
    for message in (ana, bob):
        [link] = await assert_links_open_pages(jail, message)
        token = link.split("token=")[1]
        resp = await client.post("/api/auth/verify-email", json={"token": token})
        assert resp.status in (200, 204), await resp.text()

    # Signing up again with a taken address: the owner is written to in their own language,
    # whatever the language of the new attempt.
    for email, language in (("ana@example.net", "en"), ("bob@example.net", "es")):
        resp = await client.post(
            "/api/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "name": "Someone",
                "date_of_birth": "1985-02-03",
                "phone": "+1 555 0199",
                "language": language,
            },
        )
        assert resp.status == 202
    sent = await jail.sent()
    ana, bob = to(sent, "ana@example.net"), to(sent, "bob@example.net")
    assert_in_language(
        ana,
        "es",
        "Alguien intentó registrarse con su dirección de correo",
        "No se cambió nada.",
        "¿Olvidó su contraseña?",
    )
    assert_in_language(
        bob,
        "en",
        "Someone tried to sign up with your e-mail address",
        "Nothing was changed.",
        "Forgot your password?",
    )
    for message in (ana, bob):
        assert len(await assert_links_open_pages(jail, message)) == 2

    for email in ("ana@example.net", "bob@example.net"):
        resp = await client.post("/api/auth/password-reset", json={"email": email})
        assert resp.status == 202
    sent = await jail.sent()
    ana, bob = to(sent, "ana@example.net"), to(sent, "bob@example.net")
    assert_in_language(
        ana, "es", "Restablezca su contraseña", "para elegir una contraseña nueva abra"
    )
    assert_in_language(bob, "en", "Reset your password", "to choose a new password open")
    for message in (ana, bob):
        [link] = await assert_links_open_pages(jail, message)
        assert urlsplit(link).path == "/reset-password"

    failures = jail.services.settings.lockout_failures
    for email in ("ana@example.net", "bob@example.net"):
        for _ in range(failures):
            await client.post("/api/auth/login", json={"email": email, "password": "wrong one!"})
    sent = await jail.sent()
    ana, bob = to(sent, "ana@example.net"), to(sent, "bob@example.net")
    assert_in_language(
        ana,
        "es",
        "Su cuenta se bloqueó tras varios intentos fallidos",
        f"tras {failures} contraseñas incorrectas seguidas",
    )
    assert_in_language(
        bob,
        "en",
        "Your account was locked after failed sign-ins",
        f"after {failures} wrong passwords in a row",
    )
    for message in (ana, bob):
        [link] = await assert_links_open_pages(jail, message)
        assert urlsplit(link).path == "/unlock-account"


async def test_approval_id_and_ban_e_mails_reach_visitors_and_admins_in_their_language(
    jail: Jail,
) -> None:
    world = jail.world
    # The admin of facility A reads Spanish and says so (staff have no profile page).
    admin_a = await jail.user("admin_a")
    resp = await admin_a.put("/api/auth/language", json={"language": "es"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["language"] == "es"
    session = await (await admin_a.get("/api/auth/session")).json()
    assert session["account"]["language"] == "es"
    admin_b = await jail.user("admin_b")

    # visitor (English) asks to visit PA2 (facility A: the Spanish admin); visitor2 (Spanish)
    # asks to visit PB1 (facility B: the English admin).
    visitor, visitor2 = await jail.user("visitor"), await jail.user("visitor2")
    requests: dict[str, int] = {}
    for user, key, facility, number in (
        (visitor, "visitor", world.facility_a, "A-1002"),
        (visitor2, "visitor2", world.facility_b, "B-2001"),
    ):
        found = await user.get(
            f"/api/facilities/{facility}/directory",
            params={"last_name": "Doe", "booking_number": number},
        )
        [entry] = await found.json()
        resp = await user.post(
            "/api/approvals",
            json={"handle": entry["handle"], "relationship": "hermana", "professional": "none"},
        )
        assert resp.status == 201, await resp.text()
        requests[key] = (await resp.json())["id"]
    sent = await jail.sent()
    to_a, to_b = to(sent, world.emails["admin_a"]), to(sent, world.emails["admin_b"])
    assert_in_language(
        to_a,
        "es",
        "Nueva solicitud de aprobación de visitante en Demo County Jail",
        "Visitor pide ser aprobado para visitar a PA2 Doe (A-1002)",
        "Revise la solicitud en la cola de aprobaciones",
    )
    assert_in_language(
        to_b,
        "en",
        "New visitor approval request at Demo County Annex",
        "Visitor2 asks to be approved to visit PB1 Doe (B-2001)",
    )
    for message in (to_a, to_b):
        [link] = await assert_links_open_pages(jail, message)
        assert urlsplit(link).path == "/admin/approvals"

    resp = await admin_a.post(
        f"/api/approvals/{requests['visitor']}/decision", json={"decision": "approved"}
    )
    assert resp.status == 200, await resp.text()
    resp = await admin_b.post(
        f"/api/approvals/{requests['visitor2']}/decision",
        json={"decision": "denied", "reason": "lista completa"},
    )
    assert resp.status == 200, await resp.text()
    sent = await jail.sent()
    assert_in_language(
        to(sent, world.emails["visitor"]),
        "en",
        "You are approved to visit PA2 Doe",
        "you are now approved to visit PA2 Doe at Demo County Jail",
    )
    assert_in_language(
        to(sent, world.emails["visitor2"]),
        "es",
        "Su solicitud para visitar a PB1 Doe fue rechazada",
        "fue rechazada.\n\nMotivo: lista completa",
    )

    # ID checks: both visitors uploaded a photo; one is verified, one is not.
    async with jail.services.write() as s:
        await s.execute(
            update(Account)
            .where(Account.id.in_([world.accounts["visitor"], world.accounts["visitor2"]]))
            .values(id_photo_path="id-photos/sample.jpg", id_status="pending")
        )
    resp = await admin_a.post(
        f"/api/visitors/{world.accounts['visitor']}/id-check", json={"decision": "verified"}
    )
    assert resp.status == 200, await resp.text()
    resp = await admin_a.post(
        f"/api/visitors/{world.accounts['visitor2']}/id-check",
        json={"decision": "rejected", "reason": "foto borrosa"},
    )
    assert resp.status == 200, await resp.text()
    sent = await jail.sent()
    assert_in_language(
        to(sent, world.emails["visitor"]),
        "en",
        "Your ID was verified",
        "You can now be approved for video visits.",
    )
    assert_in_language(
        to(sent, world.emails["visitor2"]),
        "es",
        "No se pudo verificar su identificación",
        "Motivo: foto borrosa",
    )

    # A ban cancels the visits at the facility: the ban and the cancellation are in the
    # visitor's language, dates included (the facility's zone, the language's names).
    for key in ("visitor", "visitor2"):
        await add_visit(jail.services, world, visitor=key, kiosk=KIOSK[key], starts_in=3 * HOUR)
    ban_ids = {}
    for key in ("visitor", "visitor2"):
        resp = await admin_a.post(
            f"/api/facilities/{world.facility_a}/bans",
            json={
                "visitor_id": world.accounts[key],
                "reason": "conducta",
                "ends_at": "2027-02-10T17:00:00Z",
            },
        )
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        assert body["cancelled_visits"] == 1
        ban_ids[key] = body["ban"]["id"]
    sent = await jail.sent()
    mine = [m for m in sent if m["To"] == world.emails["visitor2"]]
    ban, cancelled = sorted(mine, key=lambda m: "cancel" in m["Subject"].lower())
    until_es = "miércoles 10 de febrero de 2027, 12:00 EST"
    assert_in_language(
        ban,
        "es",
        f"No puede visitar en Demo County Jail hasta el {until_es}",
        f"no puede participar en visitas en Demo County Jail hasta el {until_es}",
        "Motivo: conducta",
    )
    assert_in_language(
        cancelled,
        "es",
        "Visita por video cancelada: lunes 4 de enero de 2027, 10:00 EST",
        f"Motivo: no puede visitar en Demo County Jail hasta el {until_es}: conducta",
    )
    mine = [m for m in sent if m["To"] == world.emails["visitor"]]
    ban, cancelled = sorted(mine, key=lambda m: "cancel" in m["Subject"].lower())
    until_en = "Wednesday 10 February 2027, 12:00 EST"
    assert_in_language(
        ban,
        "en",
        f"You may not visit at Demo County Jail until {until_en}",
        "Reason: conducta",
    )
    assert_in_language(
        cancelled,
        "en",
        "Video visit cancelled: Monday 04 January 2027, 10:00 EST",
        f"Reason: you may not visit at Demo County Jail until {until_en}: conducta",
    )
    for key in ("visitor", "visitor2"):
        resp = await admin_a.post(f"/api/bans/{ban_ids[key]}/lift", json={})
        assert resp.status == 200, await resp.text()
    sent = await jail.sent()
    assert_in_language(
        to(sent, world.emails["visitor"]),
        "en",
        "You may visit at Demo County Jail again",
        "your ban from visits at Demo County Jail was lifted.",
    )
    assert_in_language(
        to(sent, world.emails["visitor2"]),
        "es",
        "Puede volver a visitar en Demo County Jail",
        "se levantó su prohibición de visitas en Demo County Jail.",
    )


async def test_visit_e_mails_and_calendar_files_are_in_the_visitors_language(
    jail: Jail,
) -> None:
    world = jail.world
    visitor, visitor2 = await jail.user("visitor"), await jail.user("visitor2")
    pa1 = world.persons["pa1"]
    booked: dict[str, dict[str, Any]] = {}
    for key, user, start in (("visitor", visitor, TUE_10), ("visitor2", visitor2, TUE_11)):
        resp = await user.post("/api/visits", json={"person_id": pa1, "start": start})
        assert resp.status == 201, await resp.text()
        booked[key] = await resp.json()
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Video visit booked: Tue 05 Jan 2027 10:00",
        "your video visit with PA1 Doe is booked.",
        "When: Tuesday 05 January 2027, 10:00 to 10:30 (America/New_York, UTC-05:00)",
        "Join link (it opens 15 minutes before the visit):",
        "This visit is monitored and recorded by the facility.",
    )
    assert_in_language(
        es,
        "es",
        "Visita por video reservada: mar 5 ene 2027, 11:00",
        "su visita por video con PA1 Doe está reservada.",
        "Cuándo: martes 5 de enero de 2027, 11:00 a 11:30 (America/New_York, UTC-05:00)",
        "Enlace para unirse (se abre 15 minutos antes de la visita):",
        "Esta visita es supervisada y grabada por el centro.",
    )
    for key, message, summary, starts in (
        ("visitor", en, "SUMMARY:Video visit with PA1 Doe", "DTSTART:20270105T150000Z"),
        ("visitor2", es, "SUMMARY:Visita por video con PA1 Doe", "DTSTART:20270105T160000Z"),
    ):
        [link] = await assert_links_open_pages(jail, message)
        assert link == booked[key]["join_url"]
        lines = calendar_of(message)
        assert summary in lines
        assert starts in lines
        assert f"URL:{link}" in lines
        assert "METHOD:PUBLISH" in lines
    [description] = [line for line in calendar_of(es) if line.startswith("DESCRIPTION:")]
    assert "Visita por video con PA1 Doe en Demo County Jail." in description
    assert "Hora local: martes 5 de enero de 2027\\, 11:00 a 11:30" in description
    assert "LOCATION:Visita por video en línea - Demo County Jail" in calendar_of(es)

    # A move: the new confirmation says which visit it replaces.
    moved: dict[str, dict[str, Any]] = {}
    for key, user, start in (("visitor", visitor, TUE_12), ("visitor2", visitor2, TUE_1230)):
        resp = await user.post(f"/api/visits/{booked[key]['id']}/reschedule", json={"start": start})
        assert resp.status in (200, 201), await resp.text()
        moved[key] = await resp.json()
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Video visit booked: Tue 05 Jan 2027 12:00",
        f"(it replaces visit {booked['visitor']['id']}, which is cancelled)",
    )
    assert_in_language(
        es,
        "es",
        "Visita por video reservada: mar 5 ene 2027, 12:30",
        f"(reemplaza la visita {booked['visitor2']['id']}, que queda cancelada)",
    )
    for key, message in (("visitor", en), ("visitor2", es)):
        [link] = await assert_links_open_pages(jail, message)
        assert link == moved[key]["join_url"]
        assert f"URL:{link}" in calendar_of(message)

    # The reminder an hour before, with a fresh join link.
    clock = jail.clock
    clock.moment = datetime(2027, 1, 5, 16, 30, tzinfo=UTC)  # 11:30 in New York
    await scheduler_pass(jail.services, clock.moment)
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Reminder: video visit with PA1 Doe at 12:00",
        "on Tuesday, January 5, 2027, 12:00-12:30 (EST).",
    )
    assert_in_language(
        es,
        "es",
        "Recordatorio: visita por video con PA1 Doe a las 12:30",
        "el martes, 5 de enero de 2027, 12:30-13:00 (EST).",
        "Únase a la visita con este enlace (se abre 15 minutos antes del inicio):",
    )
    for message in (en, es):
        [link] = await assert_links_open_pages(jail, message)
        assert urlsplit(link).path.startswith("/join/")

    # Staff cancel both with a reason: the cancellation carries a METHOD:CANCEL calendar file.
    admin_a = await jail.user("admin_a")
    for key in ("visitor", "visitor2"):
        resp = await admin_a.post(
            f"/api/visits/{moved[key]['id']}/cancel", json={"reason": "cierre del módulo"}
        )
        assert resp.status == 200, await resp.text()
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Video visit cancelled: Tue 05 Jan 2027 12:00",
        "the facility cancelled your video visit with PA1 Doe on Tuesday 05 January 2027",
        "This visit does not count against your weekly visits.",
    )
    assert_in_language(
        es,
        "es",
        "Visita por video cancelada: mar 5 ene 2027, 12:30",
        "el centro canceló su visita por video con PA1 Doe del martes 5 de enero de 2027, 12:30",
        "Motivo: cierre del módulo",
        "Esta visita no cuenta para su límite semanal de visitas.",
    )
    assert {"METHOD:CANCEL", "SUMMARY:Video visit with PA1 Doe"} <= set(calendar_of(en))
    assert {"METHOD:CANCEL", "SUMMARY:Visita por video con PA1 Doe"} <= set(calendar_of(es))

    # A visit that lost four minutes is credited: the reason and the minutes are translated.
    clock.moment = NOW
    for key in ("visitor", "visitor2"):
        visit_id = await add_visit(
            jail.services, world, visitor=key, kiosk=KIOSK[key], starts_in=-2 * HOUR
        )
        async with jail.services.write() as s:
            visit = await s.get(Visit, visit_id)
            assert visit is not None
            visit.state, visit.visitor_lost_s, visit.end_reason = "completed", 200.0, "time_up"
            assert await credit_ended_visit(s, jail.services, visit, NOW)
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Free rebooking for your video visit of Mon 04 Jan 2027 05:00",
        "Reason: the call was interrupted for 4 minutes in all",
        "Time lost: 4 minutes.",
    )
    assert_in_language(
        es,
        "es",
        "Nueva reserva gratuita para su visita por video del lun 4 ene 2027, 05:00",
        "Motivo: la llamada se interrumpió durante 4 minutos en total",
        "Tiempo perdido: 4 minutos.",
        '"Volver a reservar"',
    )

    # The person's visiting is suspended: the reason the server writes is translated too.
    for key in ("visitor", "visitor2"):
        await add_visit(jail.services, world, visitor=key, kiosk=KIOSK[key], starts_in=4 * HOUR)
    resp = await admin_a.post(
        f"/api/persons/{pa1}/suspend",
        json={"until": "2027-01-09T17:00:00Z", "reason": "disciplinary (staff only)"},
    )
    assert resp.status == 200, await resp.text()
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Video visit cancelled: Monday 04 January 2027, 11:00 EST",
        "Reason: visiting with PA1 Doe is suspended until Saturday 09 January 2027, 12:00 EST",
    )
    assert_in_language(
        es,
        "es",
        "Visita por video cancelada: lunes 4 de enero de 2027, 11:00 EST",
        "Motivo: las visitas con PA1 Doe están suspendidas hasta el sábado 9 de enero de 2027",
    )
    for message in (en, es):
        assert "disciplinary" not in body_of(message)


async def test_switching_the_profile_language_changes_the_next_e_mails(jail: Jail) -> None:
    email = jail.world.emails["visitor2"]
    visitor2 = await jail.user("visitor2")
    me = await (await visitor2.get("/api/me")).json()
    assert me["language"] == "es"
    await jail.client.post("/api/auth/password-reset", json={"email": email})
    assert to(await jail.sent(), email)["Subject"].lstrip() == "Restablezca su contraseña"

    resp = await visitor2.patch("/api/me", json={"language": "en"})
    assert (await resp.json())["language"] == "en"
    await jail.client.post("/api/auth/password-reset", json={"email": email})
    assert to(await jail.sent(), email)["Subject"] == "Reset your password"

    # Only the two languages the e-mails are written in.
    assert (await visitor2.patch("/api/me", json={"language": "fr"})).status == 422
    assert (await visitor2.put("/api/auth/language", json={"language": "de"})).status == 422
    session = await (await visitor2.get("/api/auth/session")).json()
    assert session["account"]["language"] == "en"
    # Any account may choose, staff too.
    officer = await jail.user("officer_a")
    resp = await officer.put("/api/auth/language", json={"language": "es"})
    assert resp.status == 200
    assert (await resp.json())["language"] == "es"


async def test_standing_weekly_visit_e_mails_are_in_the_visitors_language(jail: Jail) -> None:
    """A week the scheduler cannot book and a series that ends are written in each visitor's
    language: the reason, the dates, the weekday and the nearest free times."""
    world = jail.world
    visitor, visitor2 = await jail.user("visitor"), await jail.user("visitor2")
    pa1 = world.persons["pa1"]
    series: dict[str, int] = {}
    for key, user, at in (("visitor", visitor, "14:00"), ("visitor2", visitor2, "16:00")):
        resp = await user.post("/api/series", json={"person_id": pa1, "weekday": 6, "time": at})
        assert resp.status == 201, await resp.text()
        series[key] = (await resp.json())["id"]
    # Sunday 17 January, 13:00 to 17:00 in New York: no visits (both weeks are skipped).
    admin_a = await jail.user("admin_a")
    resp = await admin_a.post(
        f"/api/facilities/{world.facility_a}/blackouts",
        json={
            "starts_at": "2027-01-17T13:00:00-05:00",
            "ends_at": "2027-01-17T17:00:00-05:00",
            "reason": "simulacro",
        },
    )
    assert resp.status == 201, await resp.text()

    # The windows of 10 and 17 January are open: the 10th is booked, the 17th is not.
    report = await scheduler_pass(jail.services, jail.clock.now())
    assert (report.series_booked, report.series_skipped) == (2, 2)
    sent = await jail.sent()
    # Each gets the 10th's confirmation (checked in the test above) and the 17th's notice.
    [en] = [m for m in sent if m["To"] == world.emails["visitor"] and "Weekly" in m["Subject"]]
    [es] = [m for m in sent if m["To"] == world.emails["visitor2"] and "semanal" in m["Subject"]]
    assert len(sent) == 4
    assert_in_language(
        en,
        "en",
        "Weekly visit not booked: Sunday 17 January 2027, 14:00 EST",
        "your standing weekly visit with PA1 Doe (every Sunday at 14:00) could not be booked "
        "for Sunday 17 January 2027, 14:00 EST.",
        "Why: visits are suspended at that time",
        # Nearest first: 12:30 (an hour and a half before), 12:00, 11:30.
        "The nearest free times:\n- Sunday 17 January 2027, 12:30\n"
        "- Sunday 17 January 2027, 12:00\n- Sunday 17 January 2027, 11:30\n",
        "Your weekly visit itself continues",
    )
    assert_in_language(
        es,
        "es",
        "Visita semanal no reservada: domingo 17 de enero de 2027, 16:00 EST",
        "no se pudo reservar su visita semanal fija con PA1 Doe (cada domingo a las 16:00) "
        "para el domingo 17 de enero de 2027, 16:00 EST.",
        "Motivo: las visitas están suspendidas a esa hora",
        # Nearest first: 17:00 (right after the blackout), 17:30, 18:00.
        "Las horas libres más cercanas:\n- domingo 17 de enero de 2027, 17:00\n"
        "- domingo 17 de enero de 2027, 17:30\n- domingo 17 de enero de 2027, 18:00\n",
        "Su visita semanal sigue",
    )
    for message in (en, es):
        links = await assert_links_open_pages(jail, message)
        assert [urlsplit(link).path for link in links] == ["/visitor/book", "/visitor/series"]

    # PA1 is released: at the next booking window each series ends, with one notice each.
    resp = await admin_a.post(f"/api/persons/{pa1}/release", json={"reason": "Bail"})
    assert resp.status == 200, await resp.text()
    await jail.sent()  # the booked visits' cancellations (checked in the test above)
    jail.clock.moment = datetime(2027, 1, 10, 21, 0, tzinfo=UTC)  # 24 January, 16:00 opens
    report = await scheduler_pass(jail.services, jail.clock.moment)
    assert report.series_ended == 2
    sent = await jail.sent()
    en, es = to(sent, world.emails["visitor"]), to(sent, world.emails["visitor2"])
    assert_in_language(
        en,
        "en",
        "Weekly visit with PA1 Doe ended",
        "your standing weekly visit with PA1 Doe (every Sunday at 14:00) has ended and books "
        "no more visits.",
        "Why: the person is no longer here",
    )
    assert_in_language(
        es,
        "es",
        "Terminó la visita semanal con PA1 Doe",
        "su visita semanal fija con PA1 Doe (cada domingo a las 16:00) terminó y ya no reserva "
        "más visitas.",
        "Motivo: la persona ya no está aquí",
    )
    for message in (en, es):
        [link] = await assert_links_open_pages(jail, message)
        assert urlsplit(link).path == "/visitor/series"
    # The API keeps the stored reason in English.
    visitor2 = await ApiUser.sign_in(jail.client, world.emails["visitor2"])  # a new day
    shown = await (await visitor2.get(f"/api/series/{series['visitor2']}")).json()
    assert (shown["state"], shown["end_reason"]) == ("ended", "the person is no longer here")
