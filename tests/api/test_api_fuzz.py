"""Property-based run over the OpenAPI document: no input, however malformed, gets a 500.

Schemathesis generates valid and invalid requests for every operation, as a signed-in facility
admin (cookie + CSRF token) against a real server with a populated facility.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.factories import PASSWORD, TOTP_SECRET
from tests.live_server import LiveServer
from vvserver.api.openapi import build_openapi
from vvserver.app import ROUTERS

SPEC = build_openapi([endpoint for router in ROUTERS for endpoint in router.endpoints])
# Signing out would end the fuzzing session itself; everything else is fair game.
SKIPPED = {("/api/auth/logout", "POST"), ("/api/auth/logout-everywhere", "POST")}
schema = schemathesis.openapi.from_dict(SPEC)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(Path(tmp_path_factory.mktemp("fuzz")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_session(live: LiveServer) -> dict[str, Any]:
    assert live.world is not None
    http = requests.Session()
    resp = http.post(
        f"{live.base_url}/api/auth/login",
        json={"email": live.world.emails["admin_a"], "password": PASSWORD},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text  # administrators give a second factor
    resp = http.post(
        f"{live.base_url}/api/auth/mfa",
        json={"code": pyotp.TOTP(TOTP_SECRET).now()},
        headers={"X-CSRF-Token": resp.json()["csrf_token"]},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return {
        "cookies": {"vv_session": resp.cookies["vv_session"]},
        "headers": {"X-CSRF-Token": resp.json()["csrf_token"]},
    }


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case[Any], live: LiveServer, admin_session: dict[str, Any]
) -> None:
    if (case.path, case.method.upper()) in SKIPPED:
        return
    response = case.call(
        base_url=live.base_url,
        headers=admin_session["headers"],
        cookies=admin_session["cookies"],
        timeout=10,
    )
    case.validate_response(response, checks=[not_a_server_error])
