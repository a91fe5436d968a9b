"""The configured ICE servers (STUN/TURN) as aiortc objects; only media builds aiortc objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from aiortc import RTCIceServer


class IceServer(NamedTuple):
    urls: list[str]
    username: str | None
    credential: str | None


def checked_ice_servers(configured: list[dict[str, object]]) -> list[IceServer]:
    """`settings.ice_servers` ({"urls", "username", "credential"}) checked, without aiortc
    (at start; the aiortc objects are made when the first room opens)."""
    servers: list[IceServer] = []
    for entry in configured:
        urls: Any = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ValueError(f"ice server without usable urls: {entry!r}")
        username, credential = entry.get("username"), entry.get("credential")
        servers.append(
            IceServer(
                urls=list(urls),
                username=str(username) if username is not None else None,
                credential=str(credential) if credential is not None else None,
            )
        )
    return servers


def rtc_ice_servers(configured: list[dict[str, object]]) -> list[RTCIceServer]:
    """`settings.ice_servers` as aiortc objects (imports aiortc)."""
    from aiortc import RTCIceServer

    return [
        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
        for s in checked_ice_servers(configured)
    ]
