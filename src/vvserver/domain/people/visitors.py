"""Visitors: profile, ID photo upload and staff ID checks, and facility bans.

ID photos are decoded and encoded again (``id_photos``: no metadata, nothing but the pixels)
and live on disk under ``data_dir/id-photos`` with random names (mode 0600); the account
keeps the path relative to the data dir. Staff see a visitor only when the visitor has an approval
request or a ban at a facility in the staff member's scope.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Approval, VisitorBan
from vvserver.domain.accounts.principal import ADMIN_ROLES, Principal
from vvserver.domain.accounts.scope import (
    Caller,
    reachable_facility_ids,
)
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from vvserver.domain.notices.language import is_language, language_of
from vvserver.domain.notices.mail_text import mail
from vvserver.domain.notices.outbox import queue_email
from vvserver.domain.people.id_photos import reencode_image, sniff_image_type
from vvserver.domain.services import Services
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

PHOTO_DIR = "id-photos"
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}


def _photo_file(settings: Settings, relative: str) -> Path:
    """Resolve a stored photo path, refusing anything outside the photo directory."""
    root = (settings.data_dir / PHOTO_DIR).resolve()
    path = (settings.data_dir / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"photo path outside {root}: {relative}")
    return path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not delete old ID photo %s: %s", path, exc)


# --------------------------------------------------------------------------- the visitor's own


async def own_profile(services: Services, account_id: int) -> Account:
    async with services.read() as session:
        account = await session.get(Account, account_id)
    if account is None or account.role != "visitor":
        raise NotFound("no such visitor")
    return account


async def update_profile(
    services: Services,
    caller: Caller,
    *,
    name: str | None,
    phone: str | None,
    language: str | None = None,
) -> Account:
    account_id = caller.principal.require_account_id()
    now = services.clock.now()
    async with services.write() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        if account is None or account.role != "visitor":
            raise NotFound("no such visitor")
        changed = []
        if name is not None and name != account.name:
            account.name = name
            changed.append("name")
        if phone is not None and phone != account.phone:
            account.phone = phone
            changed.append("phone")
        if language is not None and language != account.language:
            if not is_language(language):
                raise InvalidInput("language must be en or es", code="bad_language")
            account.language = language
            changed.append("language")
        await caller.audit(
            services,
            session,
            "visitor.update_profile",
            f"account:{account.id}",
            now,
            fields=changed,
        )
    return account


async def store_id_photo(
    services: Services, caller: Caller, data: bytes, declared_type: str
) -> Account:
    """Save a new ID photo, decoded and encoded again; the ID goes back to ``pending`` review."""
    settings = services.settings
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"ID photos may be at most {settings.max_upload_bytes} bytes")
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise InvalidInput("the file is not a JPEG or PNG image", code="not_an_image")
    if sniffed != declared_type:
        raise InvalidInput(
            f"the file is a {sniffed} image but was sent as {declared_type}",
            code="content_type_mismatch",
        )
    account_id = caller.principal.require_account_id()
    clean = await asyncio.to_thread(reencode_image, data, sniffed)
    relative = f"{PHOTO_DIR}/{secrets.token_hex(16)}{_EXTENSIONS[sniffed]}"
    path = _photo_file(settings, relative)
    await asyncio.to_thread(_write_private, path, clean.data)
    now = services.clock.now()
    try:
        async with services.write() as session:
            account = await session.get(Account, account_id, with_for_update=True)
            if account is None or account.role != "visitor":
                raise NotFound("no such visitor")
            old = account.id_photo_path
            account.id_photo_path = relative
            account.id_photo_type = sniffed
            account.id_status = "pending"
            account.id_reject_reason = None
            account.id_checked_at = None
            account.id_checked_by = None
            await caller.audit(
                services,
                session,
                "id_photo.upload",
                f"account:{account.id}",
                now,
                content_type=sniffed,
                size=len(clean.data),
                uploaded_size=len(data),
                pixels=f"{clean.width}x{clean.height}",
            )
    except BaseException:
        await asyncio.to_thread(_remove, path)
        raise
    if old:
        try:
            await asyncio.to_thread(_remove, _photo_file(settings, old))
        except ValueError as exc:
            logger.warning("not deleting old ID photo: %s", exc)
    return account


# --------------------------------------------------------------------------- staff views


@dataclass(frozen=True, slots=True)
class VisitorRecord:
    account: Account
    approvals: list[Approval]
    bans: list[VisitorBan]


async def visitor_in_scope(session: AsyncSession, principal: Principal, visitor_id: int) -> Account:
    """The visitor, if they asked to visit (or are banned) at a facility the caller can see."""
    account = await session.get(Account, visitor_id)
    if account is None or account.role != "visitor":
        raise NotFound("no such visitor")
    reachable = reachable_facility_ids(principal)
    linked = await session.scalar(
        select(Account.id).where(
            Account.id == visitor_id,
            or_(
                select(Approval.id)
                .where(Approval.visitor_id == visitor_id, Approval.facility_id.in_(reachable))
                .exists(),
                select(VisitorBan.id)
                .where(VisitorBan.visitor_id == visitor_id, VisitorBan.facility_id.in_(reachable))
                .exists(),
            ),
        )
    )
    if linked is None:
        raise NotFound("no such visitor")
    return account


async def visitor_record(
    services: Services, principal: Principal, visitor_id: int
) -> VisitorRecord:
    reachable = reachable_facility_ids(principal)
    async with services.read() as session:
        account = await visitor_in_scope(session, principal, visitor_id)
        approvals = await session.scalars(
            select(Approval)
            .where(Approval.visitor_id == visitor_id, Approval.facility_id.in_(reachable))
            .order_by(Approval.id)
        )
        bans = await session.scalars(
            select(VisitorBan)
            .where(VisitorBan.visitor_id == visitor_id, VisitorBan.facility_id.in_(reachable))
            .order_by(VisitorBan.id)
        )
        return VisitorRecord(account, list(approvals.all()), list(bans.all()))


async def read_id_photo(services: Services, caller: Caller, visitor_id: int) -> tuple[bytes, str]:
    """The photo bytes and content type; every view is audited (``id_photo.view``)."""
    async with services.read() as session:
        account = await visitor_in_scope(session, caller.principal, visitor_id)
    if account.id_photo_path is None or account.id_photo_type is None:
        raise NotFound("this visitor has not uploaded an ID photo", code="no_id_photo")
    try:
        data = await asyncio.to_thread(
            _photo_file(services.settings, account.id_photo_path).read_bytes
        )
    except (OSError, ValueError) as exc:
        logger.error("ID photo of account %s unreadable: %s", account.id, exc)
        raise NotFound("the ID photo file is missing", code="no_id_photo") from exc
    await services.audit_now(caller.record("id_photo.view", target=f"account:{account.id}"))
    return data, account.id_photo_type


async def check_id(
    services: Services, caller: Caller, visitor_id: int, *, verified: bool, reason: str | None
) -> Account:
    """Record the ID check; the visitor is e-mailed the result (and the reason when rejected)."""
    if not verified and not reason:
        raise InvalidInput("give the visitor a reason for the rejection", code="reason_required")
    if caller.principal.role not in ADMIN_ROLES:
        raise Forbidden("administrators only")
    now = services.clock.now()
    async with services.write() as session:
        account = await visitor_in_scope(session, caller.principal, visitor_id)
        await session.refresh(account, with_for_update=True)
        if account.id_photo_path is None:
            raise Conflict("this visitor has not uploaded an ID photo", code="no_id_photo")
        account.id_status = "verified" if verified else "rejected"
        account.id_reject_reason = None if verified else reason
        account.id_checked_at = now
        account.id_checked_by = caller.principal.account_id
        text = mail(
            language_of(account.language),
            "id_verified" if verified else "id_rejected",
            name=account.name,
            reason=reason,
        )
        queue_email(
            session,
            now,
            kind="id_check",
            to=account.email,
            subject=text.subject,
            body=text.body,
        )
        await caller.audit(
            services,
            session,
            "visitor.id_check",
            f"account:{account.id}",
            now,
            decision=account.id_status,
            reason=reason,
        )
    return account
