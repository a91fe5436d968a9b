"""Queued e-mail leaves by SMTP (or into the outbox folder), once, and survives a server outage."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import fast_passwords, make_settings
from tests.workers.smtp_support import Mailbox, free_port
from vvserver.app import build_services
from vvserver.db.models import Notification
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.services import Services
from vvserver.notify.mailer import MAX_ATTEMPTS, claim_due, mailer_pass

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\n"
    "BEGIN:VEVENT\r\nUID:visit-7\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


async def services_for(tmp_path: Path, sqlite_url: str, **mail: object) -> Services:
    return build_services(
        make_settings(tmp_path / "data", sqlite_url, **mail), passwords=fast_passwords()
    )


@pytest.fixture
async def smtp_services(
    tmp_path: Path, sqlite_url: str, smtp_server: tuple[Mailbox, int]
) -> AsyncIterator[Services]:
    svc = await services_for(
        tmp_path,
        sqlite_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server[1],
        smtp_username="vv-mailer",
        smtp_password="mail-secret",
        mail_from="Visits <visits@jail.example>",
    )
    yield svc
    await svc.db.close()


async def queue(services: Services, now: datetime, **mail: Any) -> int:
    async with services.write() as session:
        note = queue_email(session, now, **mail)
        await session.flush()
        return note.id


async def notification(services: Services, note_id: int) -> Notification:
    async with services.read() as session:
        note = await session.get(Notification, note_id)
        assert note is not None
        return note


async def test_queued_mail_is_sent_once_with_body_and_calendar_attachment(
    smtp_services: Services, smtp_server: tuple[Mailbox, int], tmp_path: Path, sqlite_url: str
) -> None:
    mailbox, _port = smtp_server
    now = smtp_services.clock.now()
    confirm = await queue(
        smtp_services,
        now - timedelta(minutes=1),
        kind="visit_booked",
        to="maria@example.net",
        subject="Visit booked: Tuesday 10:00",
        body="Your visit with Joe is booked. Grüße!",
        ics=ICS,
    )
    verify = await queue(
        smtp_services,
        now,
        kind="verify_email",
        to="ana@example.net",
        subject="Confirm your e-mail",
        body="Open the link to confirm.",
    )

    assert await mailer_pass(smtp_services, now) == 2

    assert mailbox.logins == ["vv-mailer"]
    assert [e.rcpt_tos for e in mailbox.envelopes] == [["maria@example.net"], ["ana@example.net"]]
    booked, confirm_mail = mailbox.messages()
    assert booked["Subject"] == "Visit booked: Tuesday 10:00"
    assert booked["From"] == "Visits <visits@jail.example>"
    assert booked["Message-ID"].startswith(f"<vv-notification-{confirm}.")
    body = booked.get_body(("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().strip() == "Your visit with Joe is booked. Grüße!"
    (attachment,) = list(booked.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == "visit.ics"
    assert "UID:visit-7" in attachment.get_content()
    assert list(confirm_mail.iter_attachments()) == []
    for note_id in (confirm, verify):
        assert (await notification(smtp_services, note_id)).sent_at == now

    assert await mailer_pass(smtp_services, now + timedelta(hours=2)) == 0
    restarted = await services_for(
        tmp_path, sqlite_url, smtp_host="127.0.0.1", smtp_port=smtp_server[1]
    )
    try:
        assert await mailer_pass(restarted, now + timedelta(hours=3)) == 0
    finally:
        await restarted.db.close()
    assert len(mailbox.envelopes) == 2


async def test_server_down_backs_off_and_gives_up_after_ten_attempts(
    tmp_path: Path, sqlite_url: str
) -> None:
    services = await services_for(
        tmp_path, sqlite_url, smtp_host="127.0.0.1", smtp_port=free_port()
    )
    try:
        now = services.clock.now()
        first = await queue(services, now, kind="k", to="a@example.net", subject="s", body="b")
        second = await queue(services, now, kind="k", to="b@example.net", subject="s", body="b")

        assert await mailer_pass(services, now) == 0
        note = await notification(services, first)
        assert (note.attempts, note.sent_at) == (1, None)
        assert note.next_attempt_at == now + timedelta(seconds=30)
        assert note.last_error
        assert (await notification(services, second)).attempts == 1

        # Not due again before the back-off ends; then the wait doubles.
        assert await mailer_pass(services, now + timedelta(seconds=29)) == 0
        assert (await notification(services, first)).attempts == 1
        later = now + timedelta(seconds=30)
        await mailer_pass(services, later)
        note = await notification(services, first)
        assert note.attempts == 2
        assert note.next_attempt_at == later + timedelta(seconds=60)

        async with services.write() as session:
            row = await session.get(Notification, first)
            assert row is not None
            row.attempts = MAX_ATTEMPTS - 1
        much_later = now + timedelta(days=1)
        await mailer_pass(services, much_later)
        gave_up = await notification(services, first)
        assert gave_up.attempts == MAX_ATTEMPTS
        assert gave_up.sent_at is None
        assert gave_up.last_error
        assert gave_up.next_attempt_at - much_later == timedelta(hours=1)
        await mailer_pass(services, much_later + timedelta(days=30))
        assert (await notification(services, first)).attempts == MAX_ATTEMPTS
    finally:
        await services.db.close()


async def test_without_smtp_messages_land_in_the_outbox_as_eml_files(services: Services) -> None:
    now = services.clock.now()
    note_id = await queue(
        services,
        now,
        kind="visit_booked",
        to="maria@example.net",
        subject="Visit booked",
        body="See you Tuesday.",
        ics=ICS,
    )

    assert await mailer_pass(services, now) == 1

    outbox = services.settings.data_dir / "outbox"
    (path,) = sorted(outbox.glob("*.eml"))
    assert path.name == f"notification-{note_id}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "maria@example.net"
    assert message["Subject"] == "Visit booked"
    plain = message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().strip() == "See you Tuesday."
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert (await notification(services, note_id)).sent_at == now
    assert not list(outbox.glob(".tmp-*"))

    path.unlink()
    assert await mailer_pass(services, now + timedelta(minutes=5)) == 0
    assert not path.exists()


async def test_a_message_that_cannot_be_built_is_given_up_at_once(services: Services) -> None:
    now = services.clock.now()
    bad = await queue(
        services, now, kind="k", to="a@example.net", subject="Hi\r\nBcc: x@evil", body="b"
    )
    good = await queue(services, now, kind="k", to="b@example.net", subject="Hello", body="b")

    assert await mailer_pass(services, now) == 1

    rejected = await notification(services, bad)
    assert rejected.attempts == MAX_ATTEMPTS
    assert rejected.sent_at is None
    assert rejected.last_error is not None
    assert rejected.last_error.startswith("invalid message")
    assert (await notification(services, good)).sent_at == now


async def test_a_claimed_batch_is_not_claimed_twice(services: Services) -> None:
    now = services.clock.now()
    for n in range(3):
        await queue(services, now, kind="k", to=f"{n}@example.net", subject="s", body="b")
    first = await claim_due(services, now, limit=2)
    second = await claim_due(services, now)
    assert len(first) == 2
    assert len(second) == 1
    assert not {m.id for m in first} & {m.id for m in second}
    async with services.read() as session:
        pending = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    assert all(note.next_attempt_at > now for note in pending)
