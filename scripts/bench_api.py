"""Availability latency and booking throughput through HTTP, on a seeded SQLite facility.

    python scripts/bench_api.py [--quick]

Builds a temporary data dir, migrates it, seeds one facility (5,000 people across housing units,
40 kiosks, 60% of the kiosk slots of the next 14 days booked, most people one visit short of their
weekly cap), starts the real server on 127.0.0.1 (random port) in a child process (or in this one,
``--in-process``) and measures through HTTP with an aiohttp client:

* availability: ``GET /api/persons/{id}/availability`` for 14 days, one request at a time, for
  random people, as their approved visitor (p50/p95/max);
* booking: ``POST /api/visits`` by distinct signed-in visitors from concurrent clients (every rule
  checked, join link issued, confirmation e-mail queued), in bookings per second.

Targets: availability p95 <= 50 ms, booking >= 200/s. Always exits 0 once it has measured.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time as clock
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vvserver.app import build_services, create_app
from vvserver.db.migrate import upgrade
from vvserver.db.models import (
    Account,
    Agency,
    Approval,
    Blackout,
    Facility,
    HousingUnit,
    Kiosk,
    Notification,
    Person,
    Session,
    Visit,
)
from vvserver.domain.accounts.secrets import PasswordHashing, new_token, token_hash
from vvserver.domain.booking.availability import slot_grid, week_start
from vvserver.domain.facilities.rules import VisitingRules
from vvserver.domain.services import Services
from vvserver.settings import Settings

logger = logging.getLogger(__name__)

TZ_NAME = "America/Chicago"
RULES = VisitingRules(lead_min_minutes=60)  # 08:00-20:00 daily, 30-minute slots, caps 2 and 3
BOOKED_SHARE = 0.6
AVAILABILITY_P95_TARGET_MS = 50.0
BOOKING_TARGET_PER_S = 200.0


@dataclass
class Plan:
    persons: int
    units: int
    kiosks: int
    availability_requests: int
    bookings: int
    clients: int
    seed: int = 7


@dataclass
class Seeded:
    person_ids: list[int] = field(default_factory=list)
    visitor_of: dict[int, int] = field(default_factory=dict)  # person -> approved visitor
    unit_of: dict[int, int] = field(default_factory=dict)  # person -> housing unit
    visits: int = 0
    persons_one_short: int = 0
    cookies: dict[int, tuple[str, str]] = field(default_factory=dict)  # visitor -> cookie, csrf


async def new_id(conn: AsyncConnection, statement: Any) -> int:
    return int((await conn.execute(statement)).scalar_one())


async def seed(services: Services, plan: Plan, rng: random.Random) -> Seeded:
    """Bulk-insert the facility with Core statements (executemany)."""
    now = services.clock.now()
    tz = ZoneInfo(TZ_NAME)
    out = Seeded()
    engine = services.db.engine
    password_hash = services.passwords.hash("bench password 1")
    async with engine.begin() as conn:
        agency_id = await new_id(
            conn, insert(Agency).values(name="Bench County", created_at=now).returning(Agency.id)
        )
        facility_id = await new_id(
            conn,
            insert(Facility)
            .values(
                agency_id=agency_id,
                name="Bench County Jail",
                timezone=TZ_NAME,
                rules=RULES.to_json(),
                created_at=now,
            )
            .returning(Facility.id),
        )
        unit_ids = [
            await new_id(
                conn,
                insert(HousingUnit)
                .values(facility_id=facility_id, name=f"Unit {n + 1}")
                .returning(HousingUnit.id),
            )
            for n in range(plan.units)
        ]
        kiosk_rows = [
            {
                "facility_id": facility_id,
                "unit_id": unit_ids[n % plan.units],
                "name": f"K{n + 1}",
                "credential_hash": token_hash(new_token()),
                "enabled": True,
                "created_at": now,
            }
            for n in range(plan.kiosks)
        ]
        await conn.execute(insert(Kiosk), kiosk_rows)
        person_rows = [
            {
                "agency_id": agency_id,
                "facility_id": facility_id,
                "unit_id": unit_ids[n % plan.units],
                "booking_number": f"B-{n:06d}",
                "first_name": f"Person{n}",
                "last_name": "Bench",
                "status": "active",
                "created_at": now,
            }
            for n in range(plan.persons)
        ]
        await conn.execute(insert(Person), person_rows)
        visitor_rows = [
            {
                "email": f"visitor{n}@bench.example",
                "password_hash": password_hash,
                "role": "visitor",
                "name": f"Visitor {n}",
                "active": True,
                "email_verified_at": now,
                "failed_logins": 0,
                "created_at": now,
                "date_of_birth": date(1980, 1, 1),
                "id_status": "verified",
            }
            for n in range((plan.persons + 1) // 2)
        ]
        await conn.execute(insert(Account), visitor_rows)
        persons = (await conn.execute(select(Person.id, Person.unit_id).order_by(Person.id))).all()
        visitors = list(
            (
                await conn.execute(
                    select(Account.id).where(Account.role == "visitor").order_by(Account.id)
                )
            )
            .scalars()
            .all()
        )
        kiosks = (await conn.execute(select(Kiosk.id, Kiosk.unit_id))).all()
        out.person_ids = [p.id for p in persons]
        out.visitor_of = {p.id: visitors[n // 2] for n, p in enumerate(persons)}
        out.unit_of = {p.id: p.unit_id for p in persons}
        await conn.execute(
            insert(Approval),
            [
                {
                    "person_id": p.id,
                    "visitor_id": out.visitor_of[p.id],
                    "facility_id": facility_id,
                    "status": "approved",
                    "relationship": "family",
                    "professional": "none",
                    "created_at": now,
                }
                for p in persons
            ],
        )
        admin_id = await new_id(
            conn,
            insert(Account)
            .values(
                email="admin@bench.example",
                password_hash=password_hash,
                role="facility_admin",
                agency_id=agency_id,
                facility_id=facility_id,
                name="Bench Admin",
                active=True,
                email_verified_at=now,
                failed_logins=0,
                created_at=now,
                id_status="none",
            )
            .returning(Account.id),
        )
        await conn.execute(
            insert(Blackout),
            {
                "facility_id": facility_id,
                "unit_id": unit_ids[0],
                "starts_at": now + timedelta(days=3),
                "ends_at": now + timedelta(days=3, hours=2),
                "reason": "bench blackout",
                "created_by": admin_id,
                "created_at": now,
            },
        )
        visit_rows = _visit_rows(persons, kiosks, out, facility_id, tz, now, rng)
        await conn.execute(insert(Visit), visit_rows)
        out.visits = len(visit_rows)
        per_week: Counter[tuple[int, date]] = Counter(
            (row["person_id"], week_start(row["start_at"], tz)) for row in visit_rows
        )
        one_short = {
            pid for (pid, _), n in per_week.items() if n == RULES.max_visits_per_person_week - 1
        }
        out.persons_one_short = len(one_short)
        sessions = []
        for visitor_id in visitors:
            cookie, csrf = new_token(), new_token()
            out.cookies[visitor_id] = (cookie, csrf)
            sessions.append(
                {
                    "token_hash": token_hash(cookie),
                    "account_id": visitor_id,
                    "csrf_token": csrf,
                    "created_at": now,
                    "last_seen_at": now,
                }
            )
        await conn.execute(insert(Session), sessions)
    return out


def _visit_rows(
    persons: Any,
    kiosks: Any,
    out: Seeded,
    facility_id: int,
    tz: ZoneInfo,
    now: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Book 60% of every kiosk's slots with people of its unit, within every cap."""
    today = now.astimezone(tz).date()
    earliest = now + timedelta(minutes=RULES.lead_min_minutes)
    latest = now + timedelta(days=RULES.lead_max_days)
    grid = [
        s
        for s in slot_grid(RULES, tz, today, today + timedelta(days=14))
        if earliest <= s.start <= latest
    ]
    people_of: dict[int, list[int]] = defaultdict(list)
    for p in persons:
        people_of[p.unit_id].append(p.id)
    person_week: Counter[tuple[int, date]] = Counter()
    visitor_week: Counter[tuple[int, date]] = Counter()
    person_busy: set[tuple[int, datetime]] = set()
    visitor_busy: set[tuple[int, datetime]] = set()
    rows: list[dict[str, Any]] = []
    for slot in grid:
        week = week_start(slot.start, tz)
        for kiosk in kiosks:
            if rng.random() >= BOOKED_SHARE:
                continue
            for _ in range(20):
                person = rng.choice(people_of[kiosk.unit_id])
                visitor = out.visitor_of[person]
                if (
                    person_week[person, week] < RULES.max_visits_per_person_week
                    and visitor_week[visitor, week] < RULES.max_visits_per_visitor_week
                    and (person, slot.start) not in person_busy
                    and (visitor, slot.start) not in visitor_busy
                ):
                    break
            else:
                continue
            person_week[person, week] += 1
            visitor_week[visitor, week] += 1
            person_busy.add((person, slot.start))
            visitor_busy.add((visitor, slot.start))
            rows.append(
                {
                    "facility_id": facility_id,
                    "unit_id": kiosk.unit_id,
                    "kiosk_id": kiosk.id,
                    "person_id": person,
                    "visitor_id": visitor,
                    "start_at": slot.start,
                    "end_at": slot.end,
                    "state": "scheduled",
                    "privileged": False,
                    "minors": [],
                    "counts_toward_limit": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def headers(seeded: Seeded, visitor_id: int) -> dict[str, str]:
    cookie, csrf = seeded.cookies[visitor_id]
    return {"Cookie": f"vv_session={cookie}", "X-CSRF-Token": csrf}


async def measure_availability(
    http: aiohttp.ClientSession, base: str, seeded: Seeded, plan: Plan, rng: random.Random
) -> list[float]:
    today = datetime.now(UTC).astimezone(ZoneInfo(TZ_NAME)).date()
    params = {"from": today.isoformat(), "to": (today + timedelta(days=13)).isoformat()}
    timings: list[float] = []
    for n in range(plan.availability_requests + 10):
        person = rng.choice(seeded.person_ids)
        started = clock.perf_counter()
        async with http.get(
            f"{base}/api/persons/{person}/availability",
            params=params,
            headers=headers(seeded, seeded.visitor_of[person]),
        ) as resp:
            await resp.read()
            assert resp.status == 200, await resp.text()
        if n >= 10:  # the first few warm caches up
            timings.append((clock.perf_counter() - started) * 1000)
    return timings


async def measure_booking(
    http: aiohttp.ClientSession, base: str, seeded: Seeded, plan: Plan, rng: random.Random
) -> tuple[float, Counter[str]]:
    """Distinct visitors each book a free slot for one of their people, from concurrent clients."""
    today = datetime.now(UTC).astimezone(ZoneInfo(TZ_NAME)).date()
    params = {"from": today.isoformat(), "to": (today + timedelta(days=13)).isoformat()}
    candidates: list[tuple[int, int, str]] = []
    planned: Counter[tuple[int, str]] = Counter()  # (unit, start) -> bookings planned there
    persons_by_visitor: dict[int, list[int]] = defaultdict(list)
    for person, visitor in seeded.visitor_of.items():
        persons_by_visitor[visitor].append(person)
    visitors = list(persons_by_visitor)
    rng.shuffle(visitors)
    for visitor in visitors:  # not timed: each client's choice of slot
        if len(candidates) >= plan.bookings:
            break
        person = rng.choice(persons_by_visitor[visitor])
        async with http.get(
            f"{base}/api/persons/{person}/availability",
            params=params,
            headers=headers(seeded, visitor),
        ) as resp:
            slots = (await resp.json())["slots"]
        # Like people at a booking page: a slot that still has a kiosk left, as far as they know.
        unit = seeded.unit_of[person]
        open_slots = [s for s in slots if s["free_kiosks"] > planned[unit, s["start"]]]
        if open_slots:
            start = rng.choice(open_slots)["start"]
            planned[unit, start] += 1
            candidates.append((visitor, person, start))
    queue: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue()
    for item in candidates:
        queue.put_nowait(item)
    outcomes: Counter[str] = Counter()

    async def client() -> None:
        while not queue.empty():
            visitor, person, start = queue.get_nowait()
            async with http.post(
                f"{base}/api/visits",
                json={"person_id": person, "start": start},
                headers=headers(seeded, visitor),
            ) as resp:
                body = await resp.json()
                outcomes[
                    "created" if resp.status == 201 else f"{resp.status} {body['error']['code']}"
                ] += 1

    started = clock.perf_counter()
    await asyncio.gather(*(client() for _ in range(plan.clients)))
    return clock.perf_counter() - started, outcomes


def bench_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'vvserver.sqlite3'}",
        secret_key="bench-secret-key-0123456789abcdef0123456789",
        public_url="http://127.0.0.1",
    )


def bench_services(settings: Settings) -> Services:
    # Cheap password hashing: sign-in is not what is measured (sessions are seeded).
    return build_services(settings, passwords=PasswordHashing(time_cost=1, memory_cost=1024))


async def start_server(services: Services) -> tuple[web.AppRunner, str]:
    app = create_app(services.settings, services=services, workers=[])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def serve(data_dir: Path) -> None:
    """The server process: print the address, serve until the parent closes stdin."""
    services = bench_services(bench_settings(data_dir))
    runner, base = await start_server(services)
    print(base, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


async def run(plan: Plan, in_process: bool) -> None:
    rng = random.Random(plan.seed)
    with tempfile.TemporaryDirectory(prefix="vvbench-") as tmp:
        data_dir = Path(tmp)
        settings = bench_settings(data_dir)
        started = clock.perf_counter()
        await upgrade(settings.resolved_database_url)
        services = bench_services(settings)
        seeded = await seed(services, plan, rng)
        seeded_s = clock.perf_counter() - started
        runner: web.AppRunner | None = None
        server: asyncio.subprocess.Process | None = None
        if in_process:
            runner, base = await start_server(services)
        else:
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--serve",
                str(data_dir),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert server.stdout is not None
            base = (await server.stdout.readline()).decode().strip()
            if not base.startswith("http://"):
                raise SystemExit(f"the server process did not start: {base!r}")
        try:
            connector = aiohttp.TCPConnector(limit=plan.clients)
            async with aiohttp.ClientSession(connector=connector) as http:
                timings = await measure_availability(http, base, seeded, plan, rng)
                elapsed, outcomes = await measure_booking(http, base, seeded, plan, rng)
        finally:
            if runner is not None:
                await runner.cleanup()
            if server is not None:
                assert server.stdin is not None
                server.stdin.close()
                await server.wait()
        async with services.read() as session:
            queued = (
                await session.execute(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.kind == "visit_booked")
                )
            ).scalar_one()
        await services.db.close()
    report(plan, seeded, seeded_s, timings, elapsed, outcomes, queued, in_process)


def report(
    plan: Plan,
    seeded: Seeded,
    seeded_s: float,
    timings: list[float],
    elapsed: float,
    outcomes: Counter[str],
    queued: int,
    in_process: bool,
) -> None:
    created = outcomes["created"]
    attempts = sum(outcomes.values())
    p95 = percentile(timings, 0.95)
    rate = created / elapsed if elapsed else 0.0
    where = "in this process" if in_process else "in a separate process"
    print(
        f"seeded in {seeded_s:.1f}s: {plan.persons} people, {plan.units} units, "
        f"{plan.kiosks} kiosks, {seeded.visits} visits ({BOOKED_SHARE:.0%} of kiosk slots), "
        f"{seeded.persons_one_short} people one visit short of the weekly cap; "
        f"SQLite, server {where}"
    )
    print()
    print(f"{'measure':<34}{'value':>14}  target")
    print("-" * 64)
    verdict = "OK" if p95 <= AVAILABILITY_P95_TARGET_MS else "MISSED"
    print(f"{'availability p50 (14 days)':<34}{statistics.median(timings):>11.1f} ms")
    print(
        f"{'availability p95':<34}{p95:>11.1f} ms  <= {AVAILABILITY_P95_TARGET_MS:.0f} ms {verdict}"
    )
    print(f"{'availability max':<34}{max(timings):>11.1f} ms")
    print(f"{'availability requests':<34}{len(timings):>14}")
    print(f"{'bookings created':<34}{created:>14}  of {attempts}, {plan.clients} clients")
    verdict = "OK" if rate >= BOOKING_TARGET_PER_S else "MISSED"
    print(f"{'booking throughput':<34}{rate:>11.0f} /s  >= {BOOKING_TARGET_PER_S:.0f}/s {verdict}")
    print(f"{'confirmation e-mails queued':<34}{queued:>14}")
    refused = {k: v for k, v in outcomes.items() if k != "created"}
    if refused:
        print(f"{'refused (races between clients)':<34}{refused}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer requests (under a minute)")
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--kiosks", type=int, default=40)
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in the measuring process"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return 0
    plan = Plan(
        persons=args.persons,
        units=args.units,
        kiosks=args.kiosks,
        availability_requests=100 if args.quick else 300,
        bookings=300 if args.quick else 1000,
        clients=args.clients,
    )
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(plan, args.in_process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
