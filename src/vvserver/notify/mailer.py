"""The e-mail worker: sends queued ``Notification`` rows, by SMTP or into an outbox folder.

One pass:

1. *Claim* a batch of due rows in a short write transaction (oldest due first, ``FOR UPDATE
   SKIP LOCKED``) by moving their ``next_attempt_at`` a lease into the future, so another
   mailer (another worker or node, or this one after a crash mid-send) leaves them alone until
   the lease runs out.
2. Send them with no transaction open (SMTP can take seconds; the write lock is never held).
   Just before each send the claim is *renewed*, fenced on the lease this pass wrote: a
   message whose lease ran out while earlier ones were slow and that another mailer claimed
   since is skipped here, so two mailers never send one message.
3. Record each outcome in its own short write transaction: ``sent_at`` on success, else
   ``attempts``/``last_error`` and an exponential back-off; after ``MAX_ATTEMPTS`` it gives up.

Delivery is at-least-once (a crash between sending and recording resends after the lease), but a
message recorded as sent is never sent again. Each message carries a stable Message-ID, so mail
clients fold the rare duplicate.

The worker (``run_mailer``) does not poll: it sleeps until the next message is due, until a
commit that queued one wakes it (``notify.outbox.queue_email``), or at most ``mailer_interval_s``.

Without ``smtp_host`` each message is written as ``<data_dir>/outbox/notification-<id>.eml``
(atomically), which a deployment without a mail server (or a test) can read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib
from sqlalchemy import select, update

from vvserver.db.models import Notification
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ATTEMPTS = 10
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
# How long a claimed message is left alone before another pass may retry it.
CLAIM_LEASE = timedelta(minutes=10)
SMTP_TIMEOUT_S = 30.0
OUTBOX_DIR = "outbox"
_MAX_ERROR_CHARS = 1000
# Least time between the starts of two worker passes; sleep a little past a due time.
MIN_PASS_GAP_S = 0.5
DUE_SLACK_S = 0.01
RETRY_AFTER_ERROR_S = 5.0


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


def backoff_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 30 s, 60 s, 120 s, ... capped at one hour."""
    seconds = BACKOFF_BASE_S * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, BACKOFF_CAP_S))


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
            raise MailServerUnavailable(_describe(exc)) from exc
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


async def claim_due(
    services: Services, now: datetime, limit: int = BATCH_SIZE
) -> list[OutgoingMail]:
    """Take up to ``limit`` due messages, oldest due first, and lease them for this pass."""
    lease_until = now + CLAIM_LEASE
    async with services.write() as session:
        rows = (
            await session.scalars(
                select(Notification)
                .where(
                    Notification.sent_at.is_(None),
                    Notification.next_attempt_at <= now,
                    Notification.attempts < MAX_ATTEMPTS,
                )
                .order_by(Notification.next_attempt_at, Notification.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        claimed = [
            OutgoingMail(
                id=row.id,
                kind=row.kind,
                to_email=row.to_email,
                subject=row.subject,
                body=row.body,
                ics=row.ics,
                created_at=row.created_at,
                attempts=row.attempts,
                lease_until=lease_until,
            )
            for row in rows
        ]
        if claimed:
            await session.execute(
                update(Notification)
                .where(Notification.id.in_([m.id for m in claimed]))
                .values(next_attempt_at=lease_until)
            )
    return claimed


async def renew_claim(services: Services, mail: OutgoingMail) -> OutgoingMail | None:
    """The message with its lease moved a full lease ahead; None when it is no longer ours
    (sent, or claimed by another mailer after our lease ran out)."""
    lease_until = services.clock.now() + CLAIM_LEASE
    async with services.write() as session:
        result = await session.execute(
            update(Notification)
            .where(
                Notification.id == mail.id,
                Notification.sent_at.is_(None),
                Notification.next_attempt_at == mail.lease_until,
            )
            .values(next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
    if getattr(result, "rowcount", 0) != 1:
        logger.warning("notification %s: another mailer holds it now; not sending it", mail.id)
        return None
    return dataclasses.replace(mail, lease_until=lease_until)


async def record_sent(services: Services, mail: OutgoingMail, now: datetime) -> None:
    async with services.write() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == mail.id, Notification.sent_at.is_(None))
            .values(sent_at=now, last_error=None)
        )


async def record_failure(
    services: Services, mail: OutgoingMail, now: datetime, error: str, *, permanent: bool
) -> None:
    attempts = MAX_ATTEMPTS if permanent else mail.attempts + 1
    error = error[:_MAX_ERROR_CHARS]
    async with services.write() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == mail.id, Notification.sent_at.is_(None))
            .values(
                attempts=attempts,
                last_error=error,
                next_attempt_at=now + backoff_delay(attempts),
            )
        )
    if attempts >= MAX_ATTEMPTS:
        logger.error(
            "giving up on notification %s (%s to %s) after %s attempts: %s",
            mail.id,
            mail.kind,
            mail.to_email,
            attempts,
            error,
        )
    else:
        logger.warning(
            "notification %s not sent (attempt %s, retry in %s): %s",
            mail.id,
            attempts,
            backoff_delay(attempts),
            error,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def mailer_pass(services: Services, now: datetime | None = None) -> int:
    """Send one batch of due messages; return how many were sent. Never raises for a message."""
    now = now or services.clock.now()
    batch = await claim_due(services, now)
    if not batch:
        return 0
    transport = make_transport(services)
    sent = 0
    connection_error: str | None = None
    try:
        for mail in batch:
            if connection_error is not None:
                # The server is unreachable: fail the rest of the batch without waiting again.
                await record_failure(services, mail, now, connection_error, permanent=False)
                continue
            if await renew_claim(services, mail) is None:
                continue
            try:
                message = build_message(services, mail, now)
                await transport.send(mail, message)
            except PermanentMailError as exc:
                await record_failure(services, mail, now, str(exc), permanent=True)
            except MailServerUnavailable as exc:
                connection_error = str(exc)
                await record_failure(services, mail, now, connection_error, permanent=False)
            except (aiosmtplib.SMTPException, OSError) as exc:
                await record_failure(services, mail, now, _describe(exc), permanent=False)
            except Exception as exc:
                # Unexpected (a bug, a library surprise): still counted, so it cannot loop forever.
                logger.exception("sending notification %s failed unexpectedly", mail.id)
                await record_failure(services, mail, now, _describe(exc), permanent=False)
            else:
                await record_sent(services, mail, now)
                sent += 1
    finally:
        await transport.close()
    logger.info("mailer: sent %s of %s due messages", sent, len(batch))
    return sent


async def next_attempt_at(services: Services) -> datetime | None:
    """When the next queued message is due (None: nothing queued that will be tried again)."""
    async with services.read() as session:
        found: datetime | None = await session.scalar(
            select(Notification.next_attempt_at)
            .where(Notification.sent_at.is_(None), Notification.attempts < MAX_ATTEMPTS)
            .order_by(Notification.next_attempt_at)
            .limit(1)
        )
    return found


async def run_mailer(services: Services) -> None:
    """Worker loop: a pass, then sleep until the next message is due or a new one is queued.

    ``queue_email`` wakes the mailer once its transaction commits; a retry sleeps until its
    back-off ends; ``mailer_interval_s`` is the longest sleep (the safety net). A failed pass
    (the database, not a message) is retried within ``RETRY_AFTER_ERROR_S``. A full batch goes
    again at once; passes are otherwise at least ``MIN_PASS_GAP_S`` apart.
    """
    cap = services.settings.mailer_interval_s
    wake = services.wakeups.mailer
    timer = asyncio.get_running_loop()
    while True:
        started = timer.time()
        wake.begin_pass()
        delay = cap
        try:
            if await mailer_pass(services) >= BATCH_SIZE:
                await asyncio.sleep(0)
                continue
            due = await next_attempt_at(services)
            if due is not None:
                # Unlike the scheduler's deadlines, a due row is never left behind by a pass
                # (claimed rows move a lease ahead), so "due now" means "go again".
                wait = (due - services.clock.now()).total_seconds()
                delay = min(cap, max(wait, 0.0) + DUE_SLACK_S)
        except Exception:
            delay = min(cap, RETRY_AFTER_ERROR_S)
            logger.exception("mailer pass failed; retrying in %s s", delay)
        await wake.sleep(delay)
        await asyncio.sleep(max(0.0, started + min(MIN_PASS_GAP_S, cap) - timer.time()))
