"""A Spanish-speaking visitor's e-mails: she signs up with the pages in Spanish and gets her
e-mails in Spanish (the confirmation link, then her booking with its join link and calendar
file); she switches her profile to English and the next e-mail is in English."""

from __future__ import annotations

import asyncio
import re
import time
from email.message import EmailMessage

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.browser.support import WebServer, check_page, open_page, read_outbox, wait_for_link
from vvserver.db.models import Account, Approval
from vvserver.domain.notices.ics import unfold

EMAIL = "marta.ruiz@example.net"
PASSWORD = "una contraseña bastante larga"


async def wait_for_mail(web: WebServer, subject: str, *, timeout_s: float = 10.0) -> EmailMessage:
    """The newest e-mail to Marta whose subject starts with ``subject`` (waits for the mailer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [m for m in read_outbox(web, EMAIL) if m["Subject"].lstrip().startswith(subject)]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            seen = [m["Subject"] for m in read_outbox(web, EMAIL)]
            raise AssertionError(f"no e-mail {subject!r} to {EMAIL}; got {seen}")
        await asyncio.sleep(0.1)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def calendar_of(message: EmailMessage) -> list[str]:
    [attachment] = list(message.iter_attachments())
    content = attachment.get_content()
    assert isinstance(content, str)
    # The outbox file has the platform's line ends; a calendar's are CRLF.
    return unfold(content.replace("\r\n", "\n").replace("\n", "\r\n"))


async def book_first_free_time(page: Page, web: WebServer, confirm: str, booked: str) -> None:
    await page.goto("/visitor/book")
    await page.locator("#book-person").select_option(str(web.world.persons["pa1"]))
    await page.wait_for_load_state("networkidle")
    await page.locator("#slots button").first.click()
    await page.get_by_role("button", name=confirm).click()
    await expect(page.get_by_role("heading", name=booked)).to_be_focused()


async def test_a_spanish_visitor_gets_spanish_e_mails_until_she_switches_to_english(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/signup", lang="es")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await page.locator("#signup-name").fill("Marta Ruiz")
    await page.locator("#signup-email").fill(EMAIL)
    await page.locator("#signup-password").fill(PASSWORD)
    await page.locator("#signup-dob").fill("1979-08-21")
    await page.locator("#signup-phone").fill("+1 555 010 0142")
    await page.get_by_role("button", name="Crear cuenta").click()
    await expect(page.get_by_role("heading", name="Revise su correo")).to_be_focused()

    link = await wait_for_link(web, EMAIL, "/verify-email")
    [verify] = read_outbox(web, EMAIL)
    assert verify["Subject"] == "Confirme su dirección de correo electrónico"
    assert text_of(verify).startswith("Hola, Marta Ruiz:")
    assert "El enlace es válido durante 3 días." in text_of(verify)
    await page.goto(link.removeprefix(web.url))
    await expect(page.get_by_text("Su correo electrónico está confirmado.")).to_be_visible()

    # Staff check her ID and approve her for PA1 Doe (their own stories test those pages).
    async with web.services.write() as session:
        marta = await session.scalar(select(Account).where(Account.email == EMAIL))
        assert marta is not None
        assert marta.language == "es"  # from the page's language at sign-up
        marta.id_status = "verified"
        session.add(
            Approval(
                person_id=web.world.persons["pa1"],
                visitor_id=marta.id,
                facility_id=web.world.facility_a,
                status="approved",
                relationship="madre",
                professional="none",
                created_at=web.services.clock.now(),
            )
        )

    await page.goto("/signin")
    await page.locator("#signin-email").fill(EMAIL)
    await page.locator("#signin-password").fill(PASSWORD)
    await page.get_by_role("button", name="Iniciar sesión").click()
    await expect(page).to_have_url(re.compile(r"/visitor/$"))
    await book_first_free_time(page, web, "Reservar este horario", "Su visita está reservada")
    booked = await wait_for_mail(web, "Visita por video reservada:")
    body = text_of(booked)
    assert "su visita por video con PA1 Doe está reservada." in body
    assert "Cuándo: " in body
    assert "Hello" not in body
    [join] = re.findall(re.escape(web.url) + r"/join/\S+", body)
    lines = calendar_of(booked)
    assert "SUMMARY:Visita por video con PA1 Doe" in lines
    assert f"URL:{join}" in lines

    # She would rather read her e-mails in English: her profile says so from now on.
    await page.goto("/visitor/profile")
    language = page.get_by_label("Idioma de mis correos")
    await expect(language).to_have_value("es")
    await language.select_option("en")
    await page.get_by_role("button", name="Guardar mis datos").click()
    await expect(page.get_by_text("Sus datos se guardaron.")).to_be_visible()
    await check_page(page, "visitor-profile-email-language")
    await page.reload()
    await expect(page.get_by_label("Idioma de mis correos")).to_have_value("en")

    await book_first_free_time(page, web, "Reservar este horario", "Su visita está reservada")
    english = await wait_for_mail(web, "Video visit booked:")
    body = text_of(english)
    assert body.startswith("Hello Marta Ruiz,")
    assert "your video visit with PA1 Doe is booked." in body
    assert "SUMMARY:Video visit with PA1 Doe" in calendar_of(english)
    # The first e-mail stays as it was sent; only the new ones are in English.
    assert [m["Subject"].lstrip().split(":")[0] for m in read_outbox(web, EMAIL)] == [
        "Confirme su dirección de correo electrónico",
        "Visita por video reservada",
        "Video visit booked",
    ]


async def test_staff_choose_their_e_mail_language_with_the_header_picker(
    web: WebServer, browser: Browser
) -> None:
    page = await open_page(browser, web, "/officer/", account="officer_a")
    async with page.expect_response("**/api/auth/language"):
        await page.locator("#vv-lang").select_option("es")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    async with web.services.read() as session:
        officer = await session.get(Account, web.world.accounts["officer_a"])
        assert officer is not None
        assert officer.language == "es"
