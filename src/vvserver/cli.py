"""Command line: ``vvserver serve | migrate | audit verify | client join``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from vvserver.settings import Settings

logger = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "database_url"):
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
    _add_common(serve)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    _add_common(migrate)
    client = sub.add_parser("client", help="headless participant (kiosks without a browser, tests)")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    client_sub.add_parser(
        "join",
        help="join a visit as visitor or kiosk; see `vvserver client join --help`",
        add_help=False,
    )
    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the audit hash chain and its anchor")
    _add_common(verify)
    return parser


async def _serve(settings: Settings) -> None:
    from vvserver.app import build_services, create_app
    from vvserver.db.migrate import upgrade

    settings.ensure_data_dir()
    await upgrade(settings.resolved_database_url)
    services = build_services(settings)
    if settings.demo:
        from vvserver.demo import seed_demo

        credentials = await seed_demo(services)
        if credentials is not None:
            path = settings.data_dir / "demo-credentials.json"
            path.write_text(json.dumps(credentials, indent=2))
            path.chmod(0o600)
            print(f"Demo accounts (also in {path}):")
            for entry in credentials["accounts"]:
                print(f"  {entry['role']:<15} {entry['email']:<32} {entry['password']}")
            for kiosk in credentials["kiosks"]:
                print(f"  kiosk           {kiosk['name']:<32} {kiosk['token']}")
    app = create_app(settings, services=services)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    print(f"vvserver listening on http://{settings.host}:{settings.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["client", "join"]:
        from vvserver.client.headless_cli import main as join_main

        return join_main(argv[2:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    settings = _settings(args)
    if args.command == "migrate":
        from vvserver.db.migrate import upgrade_sync

        settings.ensure_data_dir()
        upgrade_sync(settings.resolved_database_url)
        print("database is at the latest schema")
        return 0
    if args.command == "audit":
        return asyncio.run(_verify(settings))
    with contextlib.suppress(KeyboardInterrupt), event_loop_runner(settings) as runner:
        runner.run(_serve(settings))
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
