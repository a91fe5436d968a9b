"""How a queued e-mail leaves: the MIME message, and the SMTP or outbox-folder transport.

``mailer`` claims and records; this module only builds and hands over one message. Without
``smtp_host`` each message is written as ``<data_dir>/outbox/notification-<id>.eml``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib

from vvserver.domain.services import Services

SMTP_TIMEOUT_S = 30.0
OUTBOX_DIR = "outbox"


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A detached copy of a claimed row: safe to use after its transaction closed."""

    id: int
    kind: str
    to_email: str
    subject: str
    body: str
    ics: str | None
    created_at: datetime
    attempts: int
    # The lease this pass holds (``next_attempt_at`` as claimed): the fence for the renewal.
    lease_until: datetime


class PermanentMailError(Exception):
    """The message can never be delivered as it is (bad header, every recipient refused)."""


class MailServerUnavailable(Exception):
    """Connecting or logging in to the SMTP server failed: the whole batch waits."""


class MailTransport(Protocol):
    async def send(self, mail: OutgoingMail, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


def build_message(services: Services, mail: OutgoingMail, now: datetime) -> EmailMessage:
    """A MIME message: UTF-8 text body, plus ``visit.ics`` (text/calendar; method=PUBLISH)."""
    settings = services.settings
    domain = urlsplit(settings.public_url).hostname or "localhost"
    message = EmailMessage()
    try:
        message["From"] = settings.mail_from
        message["To"] = mail.to_email
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(now)
        # Stable per notification, so a resend after a crash is recognisably the same message.
        stamp = int(mail.created_at.timestamp())
        message["Message-ID"] = f"<vv-notification-{mail.id}.{stamp}@{domain}>"
        message.set_content(mail.body, subtype="plain", charset="utf-8")
        if mail.ics:
            message.add_attachment(
                mail.ics,
                subtype="calendar",
                charset="utf-8",
                filename="visit.ics",
                params={"method": "PUBLISH"},
            )
    except (ValueError, TypeError) as exc:
        raise PermanentMailError(f"invalid message: {exc}") from exc
    return message


class SmtpTransport:
    """One SMTP connection per batch, opened on first use and reopened after a failure."""

    def __init__(self, services: Services) -> None:
        self._settings = services.settings
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password if s.smtp_username else None,
            start_tls=s.smtp_starttls,
            timeout=SMTP_TIMEOUT_S,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            if client.is_connected:
                client.close()
            raise MailServerUnavailable(describe_error(exc)) from exc
        self._client = client
        return client

    async def send(self, mail: OutgoingMail, message: EmailMessage) -> None:
        client = await self._connected()
        try:
            await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentMailError(f"recipient refused: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()
            raise

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


class OutboxTransport:
    """Writes ``notification-<id>.eml`` files into the outbox folder (atomic rename)."""

    def __init__(self, services: Services) -> None:
        self.directory = services.settings.data_dir / OUTBOX_DIR

    async def send(self, mail: OutgoingMail, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, mail.id, bytes(message))

    def _write(self, notification_id: int, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"notification-{notification_id}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def close(self) -> None:
        return None


def make_transport(services: Services) -> MailTransport:
    if services.settings.smtp_host:
        return SmtpTransport(services)
    return OutboxTransport(services)


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
