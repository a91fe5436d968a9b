"""Demo data for ``vvserver serve --demo``: one agency, one facility, staff, kiosks, people."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, time
from typing import Any

from sqlalchemy import func, select

from vvserver.db.models import Account, Agency, Approval, Facility, HousingUnit, Kiosk, Person
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.accounts.totp import new_secret, provisioning_uri, seal_secret
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.facilities.rules import HourWindow, VisitingRules
from vvserver.domain.services import Services

DEMO_RULES = VisitingRules(
    windows=tuple(HourWindow(d, time(8, 0), time(21, 0)) for d in range(7)),
    slot_minutes=30,
    lead_min_minutes=60,
)


async def seed_demo(services: Services) -> dict[str, Any] | None:
    """Seed the demo agency if the database has none; return the credentials created."""
    async with services.read() as session:
        if (await session.scalar(select(func.count()).select_from(Agency))) != 0:
            return None
    now = services.clock.now()
    people = [
        ("agency_admin", "admin@demo.vvserver.test", "Agency Admin"),
        ("facility_admin", "facility@demo.vvserver.test", "Facility Admin"),
        ("officer", "officer@demo.vvserver.test", "Officer Ortiz"),
        ("visitor", "visitor@demo.vvserver.test", "Maria Visitor"),
    ]
    passwords = {email: secrets.token_urlsafe(12) for _, email, _ in people}
    hashes = {
        email: await asyncio.to_thread(services.passwords.hash, pw)
        for email, pw in passwords.items()
    }
    credentials: dict[str, Any] = {"accounts": [], "kiosks": []}
    async with services.write() as s:
        agency = Agency(name="Demo County Sheriff", created_at=now)
        s.add(agency)
        await s.flush()
        facility = Facility(
            agency_id=agency.id,
            name="Demo County Jail",
            timezone="America/New_York",
            rules=DEMO_RULES.to_json(),
            created_at=now,
        )
        s.add(facility)
        await s.flush()
        units = [HousingUnit(facility_id=facility.id, name=n) for n in ("North", "South")]
        s.add_all(units)
        await s.flush()
        for unit in units:
            for n in (1, 2):
                kiosk = Kiosk(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    name=f"{unit.name}-{n}",
                    credential_hash="",
                    enabled=True,
                    created_at=now,
                )
                s.add(kiosk)
                await s.flush()
                token = f"k{kiosk.id}.{new_token()}"
                kiosk.credential_hash = token_hash(token)
                credentials["kiosks"].append({"name": kiosk.name, "token": token})
        persons = []
        for i, (first, last) in enumerate(
            [("James", "Carter"), ("Luis", "Moreno"), ("Dana", "Brooks"), ("Ray", "Nguyen")]
        ):
            person = Person(
                agency_id=agency.id,
                facility_id=facility.id,
                unit_id=units[i % 2].id,
                booking_number=f"DC-{24001 + i}",
                first_name=first,
                last_name=last,
                status="active",
                created_at=now,
            )
            s.add(person)
            persons.append(person)
        await s.flush()
        visitor_id = 0
        for role, email, name in people:
            staff = role != "visitor"
            account = Account(
                email=email,
                password_hash=hashes[email],
                role=role,
                agency_id=agency.id if staff else None,
                facility_id=facility.id if role in ("facility_admin", "officer") else None,
                name=name,
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                date_of_birth=None if staff else date(1985, 4, 12),
                phone=None if staff else "+1 555 0100",
                id_status="none" if staff else "verified",
            )
            s.add(account)
            await s.flush()
            entry: dict[str, str] = {"role": role, "email": email, "password": passwords[email]}
            if staff:
                # Demo staff are enrolled in MFA already: add the secret (or the otpauth URI)
                # to an authenticator app, or use `oathtool --totp -b SECRET`.
                secret = new_secret()
                account.mfa_secret = seal_secret(services.secret, account.id, secret)
                account.mfa_enrolled_at = now
                entry["totp_secret"] = secret
                entry["otpauth_uri"] = provisioning_uri(
                    secret, account_name=email, issuer=f"{services.settings.mfa_issuer} demo"
                )
            else:
                visitor_id = account.id
            credentials["accounts"].append(entry)
        s.add(
            Approval(
                person_id=persons[0].id,
                visitor_id=visitor_id,
                facility_id=facility.id,
                status="approved",
                relationship="spouse",
                professional="none",
                created_at=now,
            )
        )
        await services.audit.append(
            s, AuditRecord("system", "demo.seed", "success", f"agency:{agency.id}"), now
        )
    return credentials
