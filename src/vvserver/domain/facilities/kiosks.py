"""Kiosks: the device in a housing unit, its credential (shown once), rotation and enabling."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import (
    Kiosk,
)
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.accounts.revocation import revoke_kiosk_token
from vvserver.domain.accounts.scope import (
    Caller,
    administered_facility,
    facility_in_scope,
    unit_of,
)
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.errors import NotFound
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- kiosks


def _kiosk_token(kiosk: Kiosk) -> str:
    """A device token ``k{id}.{secret}``; only its SHA-256 is stored."""
    token = f"k{kiosk.id}.{new_token()}"
    kiosk.credential_hash = token_hash(token)
    return token


async def create_kiosk(
    services: Services, caller: Caller, facility_id: int, *, unit_id: int, name: str
) -> tuple[Kiosk, str]:
    now = services.clock.now()
    async with services.write() as session:
        facility = await administered_facility(session, caller.principal, facility_id)
        unit = await unit_of(session, facility, unit_id)
        kiosk = Kiosk(
            facility_id=facility.id,
            unit_id=unit.id,
            name=name,
            credential_hash="",
            enabled=True,
            created_at=now,
        )
        session.add(kiosk)
        await session.flush()
        token = _kiosk_token(kiosk)
        await caller.audit(
            services, session, "kiosk.create", f"kiosk:{kiosk.id}", now, unit_id=unit.id, name=name
        )
    return kiosk, token


async def list_kiosks(services: Services, principal: Principal, facility_id: int) -> list[Kiosk]:
    async with services.read() as session:
        facility = await facility_in_scope(session, principal, facility_id)
        rows = await session.scalars(
            select(Kiosk).where(Kiosk.facility_id == facility.id).order_by(Kiosk.name, Kiosk.id)
        )
        return list(rows.all())


async def _administered_kiosk(session: AsyncSession, principal: Principal, kiosk_id: int) -> Kiosk:
    kiosk = await session.get(Kiosk, kiosk_id, with_for_update=True)
    if kiosk is None:
        raise NotFound("no such kiosk")
    await administered_facility(session, principal, kiosk.facility_id)
    return kiosk


async def rotate_kiosk(services: Services, caller: Caller, kiosk_id: int) -> tuple[Kiosk, str]:
    """Issue a new device token; the old one stops working at once (its sockets close)."""
    now = services.clock.now()
    async with services.write() as session:
        kiosk = await _administered_kiosk(session, caller.principal, kiosk_id)
        token = _kiosk_token(kiosk)
        revoke_kiosk_token(session, kiosk.id, reason="kiosk_token_rotated")
        await caller.audit(services, session, "kiosk.rotate", f"kiosk:{kiosk.id}", now)
    return kiosk, token


async def update_kiosk(
    services: Services, caller: Caller, kiosk_id: int, *, name: str | None, enabled: bool | None
) -> Kiosk:
    now = services.clock.now()
    async with services.write() as session:
        kiosk = await _administered_kiosk(session, caller.principal, kiosk_id)
        changes: dict[str, Any] = {}
        if name is not None and name != kiosk.name:
            kiosk.name = changes["name"] = name
        if enabled is not None and enabled != kiosk.enabled:
            kiosk.enabled = changes["enabled"] = enabled
            if not enabled:  # its open sockets close at once; it shows offline
                revoke_kiosk_token(session, kiosk.id, reason="kiosk_disabled")
        await caller.audit(services, session, "kiosk.update", f"kiosk:{kiosk.id}", now, **changes)
    return kiosk
