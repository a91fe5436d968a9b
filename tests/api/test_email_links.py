"""Every link the server puts in an e-mail opens a real page: a family or an admin who clicks
one must not land on a 404. The links are found in the code that writes e-mails, so a new e-mail
with a new link is checked too."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]

SRC = Path(__file__).resolve().parents[2] / "src" / "vvserver"
# f"{services.settings.public_url}/path..." and f"{...public_url.rstrip('/')}/path..."
LINK = re.compile(r"public_url(?:\.rstrip\('/'\))?\}(/[A-Za-z0-9/_.-]*)")


def e_mail_link_paths() -> dict[str, str]:
    """Link path (tokens filled with a sample) -> the file that writes it."""
    found: dict[str, str] = {}
    for module in SRC.rglob("*.py"):
        for path in LINK.findall(module.read_text()):
            sample = path + "sample-token" if path.endswith("/") else path
            found[sample] = str(module.relative_to(SRC))
    return found


def test_the_e_mail_links_are_found() -> None:
    paths = e_mail_link_paths()
    assert {"/verify-email", "/reset-password", "/join/sample-token"} <= set(paths)
    assert any(path.startswith("/admin/") for path in paths)


async def test_every_link_in_an_e_mail_opens_a_page(client: Client) -> None:
    for path, module in e_mail_link_paths().items():
        resp = await client.get(path)
        assert resp.status == 200, f"{module}: {path} answers {resp.status}"
        assert resp.content_type == "text/html", f"{module}: {path} is {resp.content_type}"
