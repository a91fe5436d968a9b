"""The web pages are served from web/ with a strict CSP, and nothing outside that folder is."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from vvserver.web_pages import WebFolder

WEB = Path(__file__).resolve().parents[2] / "web"
Client = TestClient[web.Request, web.Application]


async def test_the_home_page_is_served_with_a_strict_content_security_policy(
    client: Client,
) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "camera=(self)" in response.headers["Permissions-Policy"]
    assert '<html lang="en">' in await response.text()


async def test_scripts_styles_manifest_and_service_worker_have_their_types(client: Client) -> None:
    expected = {
        "/assets/core.js": "text/javascript",
        "/assets/app.css": "text/css",
        "/manifest.webmanifest": "application/manifest+json",
        "/sw.js": "text/javascript",
        "/icons/icon-192.png": "image/png",
        "/i18n/common.es.json": "application/json",
    }
    for path, content_type in expected.items():
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == content_type, path
    manifest = json.loads(await (await client.get("/manifest.webmanifest")).text())
    assert {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}


async def test_paths_outside_the_web_folder_and_hidden_files_are_not_found(client: Client) -> None:
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/.git/config", "/nope", "/x.py"):
        response = await client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"


async def test_unknown_api_paths_stay_json_errors_not_pages(client: Client) -> None:
    response = await client.get("/api/no-such-thing")
    assert response.status == 404
    assert response.content_type == "application/json"


def test_pretty_urls_resolve_to_html_files_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "visitor").mkdir()
    (tmp_path / "visitor" / "index.html").write_text("<p>home</p>")
    (tmp_path / "visitor" / "book.html").write_text("<p>book</p>")
    (tmp_path / "secret.py").write_text("x = 1")
    folder = WebFolder(tmp_path)
    assert folder.resolve("/visitor/") == (tmp_path / "visitor" / "index.html").resolve()
    assert folder.resolve("/visitor") == (tmp_path / "visitor" / "index.html").resolve()
    assert folder.resolve("/visitor/book") == (tmp_path / "visitor" / "book.html").resolve()
    assert folder.resolve("/secret.py") is None
    assert folder.resolve("/visitor/../../etc/passwd") is None


def test_every_translation_file_has_the_same_keys_in_english_and_spanish() -> None:
    for english in sorted((WEB / "i18n").glob("*.en.json")):
        spanish = english.with_name(english.name.replace(".en.json", ".es.json"))
        en_keys = set(json.loads(english.read_text(encoding="utf-8")))
        es_keys = set(json.loads(spanish.read_text(encoding="utf-8")))
        assert en_keys == es_keys, f"{english.name}: {sorted(en_keys ^ es_keys)}"


def test_an_emailed_join_link_opens_the_call_page(tmp_path: Path) -> None:
    (tmp_path / "visitor").mkdir()
    (tmp_path / "visitor" / "call.html").write_text("<p>call</p>")
    folder = WebFolder(tmp_path)
    page = (tmp_path / "visitor" / "call.html").resolve()
    assert folder.resolve("/join/eyJhbGciOi.abc.def") == page
    assert folder.resolve("/join/a/b") is None
