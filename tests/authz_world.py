"""Objects in three facilities (A, B same agency; C another agency) for the authorization matrix.

``Objects.ids[param]`` maps a path parameter name to its object in each place:
"A" (the caller's own facility), "B" (another facility of the agency), "C" (another agency),
"mine" / "theirs" (objects of the signed-in visitor / of another visitor).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from tests.factories import PASSWORD, World
from vvserver.db.models import (
    Account,
    Approval,
    Blackout,
    HousingUnit,
    Person,
    Visit,
    VisitorBan,
    VisitSeries,
)
from vvserver.domain.services import Services

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@dataclass
class Objects:
    ids: dict[str, dict[str, int]] = field(default_factory=dict)


async def populate(services: Services, world: World) -> Objects:
    now = services.clock.now()
    start = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    password_hash = await asyncio.to_thread(services.passwords.hash, PASSWORD)
    objects = Objects()
    ids = objects.ids
    async with services.write() as s:
        unit_c = await s.scalar(
            select(HousingUnit.id).where(HousingUnit.facility_id == world.facility_c)
        )
        assert unit_c is not None
        ids["facility_id"] = {"A": world.facility_a, "B": world.facility_b, "C": world.facility_c}
        ids["unit_id"] = {"A": world.unit_a1, "B": world.unit_b1, "C": unit_c}
        ids["kiosk_id"] = {
            p: world.kiosks[k] for p, k in (("A", "a1-1"), ("B", "b1-1"), ("C", "c1-1"))
        }
        ids["person_id"] = {
            "A": world.persons["pa1"],
            "B": world.persons["pb1"],
            "C": world.persons["pc1"],
            "mine": world.persons["pa1"],
            "theirs": world.persons["pa2"],
        }
        ids["account_id"] = {
            "A": world.accounts["officer_a"],
            "B": world.accounts["officer_b"],
            "C": world.accounts["admin_c"],
        }
        # One visitor per place, known to that facility only through an approval request.
        visitor_ids: dict[str, int] = {}
        approvals: dict[str, int] = {}
        for place, person_key in (("A", "pa2"), ("B", "pb1"), ("C", "pc1")):
            account = Account(
                email=f"known-in-{place.lower()}@example.net",
                password_hash=password_hash,
                role="visitor",
                name=f"Known In {place}",
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                phone="+1 555 0101",
                id_status="pending",
                id_photo_path=f"id-photos/authz-{place.lower()}.png",
                id_photo_type="image/png",
            )
            photo = services.settings.data_dir / "id-photos" / f"authz-{place.lower()}.png"
            photo.write_bytes(PNG)
            s.add(account)
            await s.flush()
            person = await s.get(Person, world.persons[person_key])
            assert person is not None
            approval = Approval(
                person_id=person.id,
                visitor_id=account.id,
                facility_id=person.facility_id,
                status="requested",
                relationship="friend",
                professional="none",
                created_at=now,
            )
            s.add(approval)
            await s.flush()
            visitor_ids[place] = account.id
            approvals[place] = approval.id
        ids["visitor_id"] = visitor_ids
        # Not a path parameter: the signed-in visitor's own account (directory handles bind it).
        ids["signed_in_visitor"] = {"mine": world.accounts["visitor"]}
        mine = await s.scalar(
            select(Approval.id).where(
                Approval.visitor_id == world.accounts["visitor"],
                Approval.person_id == world.persons["pa1"],
            )
        )
        theirs = await s.scalar(
            select(Approval.id).where(Approval.visitor_id == world.accounts["visitor2"])
        )
        assert mine is not None
        assert theirs is not None
        ids["approval_id"] = {**approvals, "mine": mine, "theirs": theirs}
        bans: dict[str, int] = {}
        blackouts: dict[str, int] = {}
        for place in ("A", "B", "C"):
            facility_id = ids["facility_id"][place]
            ban = VisitorBan(
                facility_id=facility_id,
                visitor_id=visitor_ids[place],
                reason="contraband",
                ends_at=now + timedelta(days=30),
                created_by=world.accounts["agency_admin"],
                created_at=now,
            )
            blackout = Blackout(
                facility_id=facility_id,
                starts_at=now + timedelta(days=20),
                ends_at=now + timedelta(days=20, hours=2),
                reason="count",
                created_by=world.accounts["agency_admin"],
                created_at=now,
            )
            s.add_all([ban, blackout])
            await s.flush()
            bans[place] = ban.id
            blackouts[place] = blackout.id
        ids["ban_id"] = bans
        ids["blackout_id"] = blackouts
        visits: dict[str, int] = {}
        for place, person_key, kiosk_key, visitor_key in (
            ("A", "pa1", "a1-1", "visitor"),
            ("theirs", "pa1", "a1-2", "visitor2"),
            ("B", "pb1", "b1-1", "visitor"),
            ("C", "pc1", "c1-1", "visitor2"),
        ):
            person = await s.get(Person, world.persons[person_key])
            assert person is not None
            visit = Visit(
                facility_id=person.facility_id,
                unit_id=person.unit_id,
                kiosk_id=world.kiosks[kiosk_key],
                person_id=person.id,
                visitor_id=world.accounts[visitor_key],
                start_at=start,
                end_at=start + timedelta(minutes=30),
                state="scheduled",
                created_at=now,
                updated_at=now,
            )
            s.add(visit)
            await s.flush()
            visits[place] = visit.id
        visits["mine"] = visits["A"]
        ids["visit_id"] = visits
        series: dict[str, int] = {}
        for place, person_key, visitor_key in (
            ("A", "pa1", "visitor"),
            ("theirs", "pa1", "visitor2"),
            ("B", "pb1", "visitor"),
            ("C", "pc1", "visitor2"),
        ):
            weekly = VisitSeries(
                visitor_id=world.accounts[visitor_key],
                person_id=world.persons[person_key],
                weekday=start.weekday(),
                local_time="15:00",
                minors=[],
                state="active",
                next_date=start.date() + timedelta(days=7),
                next_start_at=start + timedelta(days=7),
                created_at=now,
                updated_at=now,
            )
            s.add(weekly)
            await s.flush()
            series[place] = weekly.id
        series["mine"] = series["A"]
        ids["series_id"] = series
    return objects
