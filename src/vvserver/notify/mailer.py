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
(atomically), which a deployment without a mail server (or a test) can read (``transports``).
The subject and body were written when the row was queued, in the recipient's language
(``domain.notices.mail_text``); the mailer sends them as they are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy import select, update

from vvserver.db.models import Notification
from vvserver.domain.services import Services
from vvserver.notify.transports import (
    MailServerUnavailable,
    OutgoingMail,
    PermanentMailError,
    build_message,
    describe_error,
    make_transport,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ATTEMPTS = 10
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
# How long a claimed message is left alone before another pass may retry it.
CLAIM_LEASE = timedelta(minutes=10)
_MAX_ERROR_CHARS = 1000
# Least time between the starts of two worker passes; sleep a little past a due time.
MIN_PASS_GAP_S = 0.5
DUE_SLACK_S = 0.01
RETRY_AFTER_ERROR_S = 5.0


def backoff_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 30 s, 60 s, 120 s, ... capped at one hour."""
    seconds = BACKOFF_BASE_S * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, BACKOFF_CAP_S))


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
                await record_failure(services, mail, now, describe_error(exc), permanent=False)
            except Exception as exc:
                # Unexpected (a bug, a library surprise): still counted, so it cannot loop forever.
                logger.exception("sending notification %s failed unexpectedly", mail.id)
                await record_failure(services, mail, now, describe_error(exc), permanent=False)
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
