"""The configured ICE servers (STUN/TURN) as aiortc objects; only media builds aiortc objects."""

from __future__ import annotations

from typing import Any

from aiortc import RTCIceServer


def rtc_ice_servers(configured: list[dict[str, object]]) -> list[RTCIceServer]:
    """`settings.ice_servers` ({"urls", "username", "credential"}) as aiortc objects."""
    servers: list[RTCIceServer] = []
    for entry in configured:
        urls: Any = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ValueError(f"ice server without usable urls: {entry!r}")
        username, credential = entry.get("username"), entry.get("credential")
        servers.append(
            RTCIceServer(
                urls=list(urls),
                username=str(username) if username is not None else None,
                credential=str(credential) if credential is not None else None,
            )
        )
    return servers
