"""An operator runs `vvserver migrate` and `vvserver serve --demo`, then signs in as admin."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import requests
import uvloop

from vvserver.cli import event_loop_runner
from vvserver.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def vvserver(*args: str) -> list[str]:
    return [sys.executable, "-m", "vvserver", *args]


def test_migrate_twice_is_harmless(tmp_path: Path) -> None:
    for _ in range(2):
        result = subprocess.run(
            vvserver("migrate", "--data-dir", str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "vvserver.sqlite3").exists()


def test_demo_server_starts_and_its_credentials_work(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VV_")}
    proc = subprocess.Popen(
        vvserver("serve", "--demo", "--port", str(port), "--data-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
        roles = {entry["role"] for entry in credentials["accounts"]}
        assert roles == {"agency_admin", "facility_admin", "officer", "visitor"}
        admin = next(e for e in credentials["accounts"] if e["role"] == "agency_admin")
        http = requests.Session()
        resp = http.post(
            f"{base}/api/auth/login",
            json={"email": admin["email"], "password": admin["password"]},
            timeout=10,
        )
        # Demo staff are enrolled in MFA: the printed TOTP secret gives the second step.
        assert resp.status_code == 202, resp.text
        assert resp.json()["stage"] == "verify"
        resp = http.post(
            f"{base}/api/auth/mfa",
            json={"code": pyotp.TOTP(admin["totp_secret"]).now()},
            headers={"X-CSRF-Token": resp.json()["csrf_token"]},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["account"]["role"] == "agency_admin"
        assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # A second start finds the agency and seeds nothing new.
    result = subprocess.run(
        vvserver("audit", "verify", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_server_runs_on_uvloop_unless_told_otherwise(tmp_path: Path) -> None:
    with event_loop_runner(Settings(data_dir=tmp_path)) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
    with event_loop_runner(Settings(data_dir=tmp_path, event_loop="asyncio")) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)


PREPARE_AS_SERVE_DOES = """
import asyncio, sys
from pathlib import Path
from vvserver.cli import _prepare
from vvserver.settings import Settings
asyncio.run(_prepare(Settings(data_dir=Path(sys.argv[1]), demo=True)))
print(sorted(name for name in ("alembic", "vvserver.demo") if name in sys.modules))
"""


def test_serve_migrates_and_seeds_a_new_data_dir_in_a_child_process(tmp_path: Path) -> None:
    # What `serve --demo` does first, in a process of its own: a brand-new data directory is
    # migrated and seeded by a `vvserver prepare` child, so the serving process never imports
    # Alembic or the demo seed (resident memory); the second start has nothing to do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VV_")}
    for start in ("first", "second"):
        result = subprocess.run(
            [sys.executable, "-c", PREPARE_AS_SERVE_DOES, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "[]", (start, result.stdout)
        if start == "first":
            assert "Demo accounts" in result.stdout  # the child's report reaches the operator
        else:
            assert "Demo accounts" not in result.stdout
    assert (tmp_path / "vvserver.sqlite3").exists()
    assert json.loads((tmp_path / "demo-credentials.json").read_text())["accounts"]


def test_serve_stops_with_a_clear_message_when_the_database_cannot_be_prepared(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    url = f"sqlite+aiosqlite:///{blocked / 'vv.sqlite3'}"  # under a file: cannot be created
    env = {k: v for k, v in os.environ.items() if not k.startswith("VV_")}
    result = subprocess.run(
        vvserver(
            "serve",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
            "--database-url",
            url,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "vvserver: preparing the database failed" in result.stderr
