"""Command line: ``vvserver serve | migrate | audit verify | staff reset-mfa | client ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vvserver.settings import Settings

logger = logging.getLogger(__name__)


SERVE_FLAGS = (
    "host",
    "port",
    "data_dir",
    "database_url",
    "workers",
    "worker_index",
    "node_name",
    "public_address",
    "redis_url",
    "drain_timeout_s",
)
# Exit code of a refusal to start (a process model that cannot work).
EXIT_REFUSED = 2
# Exit code of a start that failed (the database could not be upgraded).
EXIT_FAILED = 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in SERVE_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "demo", False):
        overrides["demo"] = True
    return Settings(**overrides)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./var)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vvserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate and run the server")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--demo", action="store_true", help="seed a demo agency if empty")
    serve.add_argument(
        "--workers",
        help="worker processes sharing the port, or 'auto' (one per core); more than one "
        "needs PostgreSQL and Redis (default 1)",
    )
    serve.add_argument("--node-name", help="this machine's name in the cluster (default: host)")
    serve.add_argument(
        "--public-address", help="the address clients reach this node's media at (ICE host)"
    )
    serve.add_argument("--redis-url", help="cluster mode: the nodes' Redis, redis://HOST:6379/0")
    serve.add_argument(
        "--drain-timeout",
        dest="drain_timeout_s",
        type=float,
        help="SIGTERM/SIGINT: seconds calls may go on before their clients re-join (120)",
    )
    # Set by the supervising process for each worker it starts (not for people).
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    _add_common(serve)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    _add_common(migrate)
    prepare = sub.add_parser(
        "prepare", help="what serve does first: apply migrations, seed the demo if asked"
    )
    prepare.add_argument("--demo", action="store_true", help="seed a demo agency if empty")
    _add_common(prepare)
    client = sub.add_parser("client", help="headless participant (kiosks without a browser, tests)")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    client_sub.add_parser(
        "join",
        help="join a visit as visitor or kiosk; see `vvserver client join --help`",
        add_help=False,
    )
    client_sub.add_parser(
        "ring",
        help="Visit now: ring, accept or decline; see `vvserver client ring --help`",
        add_help=False,
    )
    staff = sub.add_parser("staff", help="staff account tools for the server operator")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    reset_mfa = staff_sub.add_parser(
        "reset-mfa",
        help="reset a staff member's two-step sign-in when no administrator can (audited)",
    )
    reset_mfa.add_argument("email", help="the staff account's e-mail address")
    _add_common(reset_mfa)
    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the audit hash chain and its anchor")
    _add_common(verify)
    return parser


class PrepareFailed(RuntimeError):
    """The child process that migrates the database and seeds the demo did not succeed."""


async def _prepare(settings: Settings) -> None:
    """Once per start (not per worker): make the secret; migrate and seed the demo if asked.
    The migration and the seed run in a child process (`vvserver prepare`) when there is
    anything to do, so the serving process never carries Alembic or the seed's work
    (docs/performance.md, "Resident memory")."""
    from vvserver.app import build_services
    from vvserver.db.migrate import at_head

    settings.ensure_data_dir()
    if not await at_head(settings.resolved_database_url):
        await _prepare_in_child(settings)
    services = build_services(settings)
    try:
        if settings.demo and await _no_agency_yet(services):
            await _prepare_in_child(settings)
    finally:
        await services.db.close()


async def _no_agency_yet(services: Any) -> bool:
    """What `seed_demo` checks first (the demo module itself is not imported here)."""
    from sqlalchemy import func, select

    from vvserver.db.models import Agency

    async with services.read() as session:
        agencies: int | None = await session.scalar(select(func.count()).select_from(Agency))
    return agencies == 0


async def _prepare_in_child(settings: Settings) -> None:
    """`vvserver prepare` in a child process, on this process's settings (the command line's
    given through the environment: a database URL may hold a password, which `ps` would show)."""
    env = {**os.environ, "VV_DATA_DIR": str(settings.data_dir), "VV_DEMO": str(settings.demo)}
    if settings.database_url is not None:
        env["VV_DATABASE_URL"] = settings.database_url
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vvserver", "prepare", env=env
    )
    status = await child.wait()
    if status != 0:
        raise PrepareFailed(
            f"preparing the database failed (`vvserver prepare` exited with {status}); "
            "its messages are above"
        )


async def _prepare_here(settings: Settings) -> None:
    """`vvserver prepare`: migrate, make the secret, seed the demo if asked."""
    from vvserver.app import build_services
    from vvserver.db.migrate import upgrade

    settings.ensure_data_dir()
    await upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        if settings.demo:
            await _seed_demo(settings, services)
    finally:
        await services.db.close()


async def _seed_demo(settings: Settings, services: Any) -> None:
    from vvserver.demo import seed_demo

    credentials = await seed_demo(services)
    if credentials is not None:
        path = settings.data_dir / "demo-credentials.json"
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)
        print(f"Demo accounts (also in {path}):")
        for entry in credentials["accounts"]:
            print(f"  {entry['role']:<15} {entry['email']:<32} {entry['password']}")
            if "totp_secret" in entry:
                print(f"  {'':<15} {'  TOTP secret (MFA):':<32} {entry['totp_secret']}")
        for kiosk in credentials["kiosks"]:
            print(f"  kiosk           {kiosk['name']:<32} {kiosk['token']}")


async def _serve(settings: Settings, *, supervised: bool) -> None:
    """One serving process; a supervised worker skips what its supervisor did once."""
    from vvserver.app import build_services
    from vvserver.node.serve import serve_process

    if not supervised:
        await _prepare(settings)
    services = build_services(settings)
    await serve_process(settings, services, parent_pid=os.getppid() if supervised else None)


def _serve_command(settings: Settings, args: argparse.Namespace, argv: list[str]) -> int:
    problem = settings.process_model_problem()
    if problem is not None:
        print(f"vvserver: refusing to start: {problem}", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    supervised = args.worker_index is not None
    try:
        if settings.workers > 1 and not supervised:
            from vvserver.node.supervisor import Supervisor, worker_argv

            with event_loop_runner(settings) as runner:
                runner.run(_prepare(settings))
                return runner.run(Supervisor(settings, worker_argv(argv)).run())
        with event_loop_runner(settings) as runner:
            runner.run(_serve(settings, supervised=supervised))
    except PrepareFailed as exc:
        print(f"vvserver: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return 0


async def _verify(settings: Settings) -> int:
    from vvserver.app import build_services
    from vvserver.domain.audit.chain import verify_chain

    services = build_services(settings)
    try:
        async with services.read() as session:
            result = await verify_chain(session, services.audit.anchor)
    finally:
        await services.db.close()
    if result.ok:
        print(f"audit log OK: {result.count} entries, chain and anchor intact")
        return 0
    print(
        f"audit log BROKEN at entry {result.first_broken_seq}: {result.problem} "
        f"({result.count} entries verified before it)"
    )
    return 1


async def _reset_mfa(settings: Settings, email: str) -> int:
    from vvserver.app import build_services
    from vvserver.domain.accounts.staff import reset_mfa_by_operator
    from vvserver.domain.errors import NotFound

    services = build_services(settings)
    try:
        account = await reset_mfa_by_operator(services, email)
    except NotFound as exc:
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        await services.db.close()
    print(f"two-step sign-in of {account.email} reset: they set it up again at the next sign-in")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["client", "join"]:
        from vvserver.client.headless_cli import main as join_main

        return join_main(argv[2:])
    if argv[:2] == ["client", "ring"]:
        from vvserver.client.ringer import main as ring_main

        return ring_main(argv[2:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    try:
        settings = _settings(args)
    except ValidationError as exc:
        print(f"vvserver: invalid settings: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.command == "migrate":
        from vvserver.db.migrate import upgrade_sync

        settings.ensure_data_dir()
        upgrade_sync(settings.resolved_database_url)
        print("database is at the latest schema")
        return 0
    if args.command == "prepare":
        asyncio.run(_prepare_here(settings))
        return 0
    if args.command == "audit":
        return asyncio.run(_verify(settings))
    if args.command == "staff":
        return asyncio.run(_reset_mfa(settings, args.email))
    with contextlib.suppress(KeyboardInterrupt):
        return _serve_command(settings, args, argv)
    return 0


def event_loop_runner(settings: Settings) -> asyncio.Runner:
    """uvloop when installed and chosen (``VV_EVENT_LOOP``), else asyncio's own loop."""
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed: running on asyncio's event loop")
        else:
            return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


if __name__ == "__main__":
    sys.exit(main())
