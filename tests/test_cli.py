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
