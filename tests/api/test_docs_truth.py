"""An outside developer writes a client from README, docs/ and /api/openapi.json alone: what those
say must be what the server does (security per operation, id types, settings, the CSRF header)."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.factories import ApiUser, World
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ACCOUNT_ROLES = {"visitor", "officer", "facility_admin", "agency_admin"}


async def openapi(client: Client) -> dict[str, object]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    spec: dict[str, object] = await resp.json()
    return spec


def operations(spec: dict[str, object]) -> list[tuple[str, str, dict[str, object]]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]


async def test_each_operation_offers_only_the_credentials_its_roles_can_hold(
    client: Client,
) -> None:
    spec = await openapi(client)
    for path, method, op in operations(spec):
        roles = set(op["x-roles"])  # type: ignore[call-overload]
        schemes = {name for entry in op.get("security", []) for name in entry}  # type: ignore[attr-defined]
        where = f"{method.upper()} {path} {sorted(roles)}"
        if "public" in roles:
            assert not schemes, where
            continue
        assert ("session" in schemes) == bool(roles & ACCOUNT_ROLES), where
        assert ("device" in schemes) == ("kiosk" in roles), where


async def test_an_admin_only_operation_says_so_and_a_kiosk_token_is_refused_there(
    client: Client, world: World
) -> None:
    kiosk_token = world.kiosk_tokens["a1-1"]
    spec = await openapi(client)
    op = spec["paths"]["/api/audit"]["get"]  # type: ignore[index]
    assert op["security"] == [{"session": []}]
    resp = await client.get("/api/audit", headers={"Authorization": f"Bearer {kiosk_token}"})
    assert resp.status == 403


async def test_path_ids_are_documented_as_integers_and_only_ascii_digits_reach_an_object(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    spec = await openapi(client)
    for path, method, op in operations(spec):
        for param in op.get("parameters", []):  # type: ignore[attr-defined]
            if param["in"] == "path" and param["name"].endswith("_id"):
                assert param["schema"]["type"] == "integer", f"{method} {path} {param['name']}"
    resp = await visitor.get("/api/visits/not-a-number")
    assert resp.status == 404


async def test_the_csrf_header_named_in_the_docs_is_the_one_the_server_checks(
    client: Client, world: World
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor"])
    guide = (REPO / "docs" / "api.md").read_text()
    spec = await openapi(visitor.client)
    header = "X-CSRF-Token"
    assert f"`{header}`" in guide
    assert header in spec["info"]["description"]  # type: ignore[index]
    without = await visitor.patch("/api/me", json={"name": "Ana Ortiz"}, headers={header: ""})
    assert without.status == 403
    assert (await without.json())["error"]["code"] == "csrf_failed"
    with_it = await visitor.patch("/api/me", json={"name": "Ana Ortiz"})
    assert with_it.status == 200


def test_every_setting_the_docs_name_exists_and_every_setting_is_documented() -> None:
    fields = set(Settings.model_fields)
    named: dict[str, set[str]] = {}
    for doc in DOCS:
        for name in re.findall(r"\bVV_[A-Z0-9_]+\b", doc.read_text()):
            named.setdefault(name.removeprefix("VV_").lower(), set()).add(doc.name)
    unknown = {name: docs for name, docs in named.items() if name not in fields}
    assert not unknown, f"the docs name settings the server does not have: {unknown}"
    table = (REPO / "docs" / "deployment.md").read_text()
    undocumented = [f for f in fields if f"`VV_{f.upper()}`" not in table]
    assert not undocumented, f"settings missing from docs/deployment.md: {undocumented}"


def test_the_rate_limits_in_the_api_guide_are_the_defaults() -> None:
    guide = (REPO / "docs" / "api.md").read_text()
    defaults = Settings()
    for name in ("rate_signup_per_min", "rate_login_per_min", "rate_reset_per_min"):
        row = next(line for line in guide.splitlines() if f"`VV_{name.upper()}`" in line)
        assert f"| {getattr(defaults, name)} |" in row, row
