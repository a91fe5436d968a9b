"""The database world of a call benchmark: one facility and N visits live right now.

Written once into a template data directory (migrated SQLite, secret, audit anchor) through
the domain models, then copied for every server the benchmark starts, so each step begins
from the same state: N kiosks with device tokens, N people in custody, N verified visitors
with approved relationships, N visits in their slot now (state ``ready``) with join links,
and one officer who monitors some of them.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import asdict, dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from vvserver.app import build_services
from vvserver.db.migrate import upgrade
from vvserver.db.models import (
    Account,
    Agency,
    Approval,
    Facility,
    HousingUnit,
    Kiosk,
    Person,
    Visit,
)
from vvserver.domain.accounts.secrets import new_token, token_hash
from vvserver.domain.accounts.totp import new_secret, seal_secret
from vvserver.domain.facilities.rules import HourWindow, VisitingRules
from vvserver.domain.visits.join_links import issue_join_token
from vvserver.settings import Settings

OFFICER_EMAIL = "officer@bench.vvserver.test"
# Open all day, hour-long slots: every visit of the run stays inside its slot. A visit not yet
# joined is a no-show only after 50 minutes: a long run (rounds) re-joins the same visits from
# fresh servers, each time before their kiosks have connected.
BENCH_RULES = VisitingRules(
    windows=tuple(HourWindow(d, time(0, 0), time(0, 0)) for d in range(7)),
    slot_minutes=60,
    lead_min_minutes=0,
    cancel_lead_minutes=0,
    max_visits_per_person_week=5,
    max_visits_per_visitor_week=5,
    no_show_minutes=50,
)
SLOT = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class BenchCall:
    """What the two clients of one visit need to join it."""

    visit_id: int
    kiosk_token: str  # Bearer k<id>.<secret> for /ws/kiosk
    join_token: str  # the visitor's join-link token for /ws/visitor

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchCall:
        return cls(int(data["visit_id"]), str(data["kiosk_token"]), str(data["join_token"]))


@dataclass(frozen=True, slots=True)
class BenchWorld:
    template_dir: Path
    calls: tuple[BenchCall, ...]
    officer_email: str
    officer_password: str
    officer_totp_secret: str

    def copy_data_dir(self, target: Path) -> Path:
        """A fresh copy of the template data directory for one server run."""
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.template_dir, target)
        return target


async def _seed(settings: Settings, calls: int) -> BenchWorld:
    await upgrade(settings.resolved_database_url)
    services = build_services(settings)
    officer_password = new_token()
    officer_totp_secret = new_secret()
    password_hash = await asyncio.to_thread(services.passwords.hash, officer_password)
    now = services.clock.now()
    start = now - timedelta(minutes=1)
    made: list[BenchCall] = []
    try:
        async with services.write() as s:
            agency = Agency(name="Bench County", created_at=now)
            s.add(agency)
            await s.flush()
            facility = Facility(
                agency_id=agency.id,
                name="Bench County Jail",
                timezone="America/Chicago",
                rules=BENCH_RULES.to_json(),
                created_at=now,
            )
            s.add(facility)
            await s.flush()
            unit = HousingUnit(facility_id=facility.id, name="Bench unit")
            s.add(unit)
            await s.flush()
            officer = Account(
                email=OFFICER_EMAIL,
                password_hash=password_hash,
                role="officer",
                agency_id=agency.id,
                facility_id=facility.id,
                name="Bench Officer",
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                id_status="none",
            )
            s.add(officer)
            await s.flush()
            # The officer signs in with TOTP like a real one (the loadgen answers with pyotp).
            officer.mfa_secret = seal_secret(services.secret, officer.id, officer_totp_secret)
            officer.mfa_enrolled_at = now
            for n in range(calls):
                kiosk = Kiosk(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    name=f"K{n + 1}",
                    credential_hash="",
                    enabled=True,
                    created_at=now,
                )
                person = Person(
                    agency_id=agency.id,
                    facility_id=facility.id,
                    unit_id=unit.id,
                    booking_number=f"BENCH-{n + 1:05d}",
                    first_name=f"Person{n + 1}",
                    last_name="Bench",
                    status="active",
                    created_at=now,
                )
                visitor = Account(
                    email=f"visitor{n + 1}@bench.vvserver.test",
                    password_hash=password_hash,
                    role="visitor",
                    name=f"Visitor {n + 1}",
                    active=True,
                    email_verified_at=now,
                    failed_logins=0,
                    created_at=now,
                    date_of_birth=date(1980, 1, 1),
                    id_status="verified",
                )
                s.add_all([kiosk, person, visitor])
                await s.flush()
                kiosk_token = f"k{kiosk.id}.{new_token()}"
                kiosk.credential_hash = token_hash(kiosk_token)
                s.add(
                    Approval(
                        person_id=person.id,
                        visitor_id=visitor.id,
                        facility_id=facility.id,
                        status="approved",
                        relationship="family",
                        professional="none",
                        created_at=now,
                    )
                )
                visit = Visit(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    kiosk_id=kiosk.id,
                    person_id=person.id,
                    visitor_id=visitor.id,
                    start_at=start,
                    end_at=start + SLOT,
                    state="ready",
                    privileged=False,
                    minors=[],
                    counts_toward_limit=True,
                    created_at=now,
                    updated_at=now,
                )
                s.add(visit)
                await s.flush()
                join_token, visit.join_token_hash = issue_join_token(
                    services.secret,
                    visit_id=visit.id,
                    visitor_id=visitor.id,
                    start_at=visit.start_at,
                    end_at=visit.end_at,
                    join_window_minutes=BENCH_RULES.join_window_minutes,
                    issued_at=now,
                )
                made.append(BenchCall(visit.id, kiosk_token, join_token))
    finally:
        await services.db.close()
    return BenchWorld(
        settings.data_dir, tuple(made), OFFICER_EMAIL, officer_password, officer_totp_secret
    )


def seed_world(template_dir: Path, calls: int, database_url: str | None = None) -> BenchWorld:
    """Migrate a new data directory (or ``database_url``) and write `calls` live visits."""
    settings = Settings(data_dir=template_dir, database_url=database_url)
    settings.ensure_data_dir()
    return asyncio.run(_seed(settings, calls))
