"""A network that blocks UDP, and coturn to get through it, for the browser tests.

Everything stays in the test's network namespace (only ``lo``, where every 127.x address is
local): the server offers its media at ``SERVER_MEDIA_ADDRESS`` (127.0.0.2); Chromium has
127.0.0.1; ``UdpBlock`` drops UDP between those two (nftables), as a hotel or school firewall
would; coturn listens on TCP 127.0.0.1 and relays from ``RELAY_ADDRESS`` (127.0.0.3), which
the block leaves alone. So the only way for the visitor's media is TURN over TCP.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI

SERVER_MEDIA_ADDRESS = "127.0.0.2"
BROWSER_ADDRESS = "127.0.0.1"
RELAY_ADDRESS = "127.0.0.3"
TURN_LISTEN_ADDRESS = "127.0.0.1"
TURN_REALM = "vvserver.test"
NFT_TABLE = "vv_udp_block"
# Records every RTCPeerConnection a page makes, so a test can read its candidate pair, and
# when (Date.now()) the first answer was applied: the moment ICE and DTLS start.
RECORD_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  window.__vvPeerConnections = made;
  window.__vvFirstAnswerAt = null;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); made.push(this); }
    async setRemoteDescription(description) {
      const result = await super.setRemoteDescription(description);
      if (window.__vvFirstAnswerAt === null) window.__vvFirstAnswerAt = Date.now();
      return result;
    }
  };
})();
"""
# The selected candidate pair of the page's connected peer connection, from getStats.
SELECTED_PAIR = """
async () => {
  const pc = window.__vvPeerConnections.filter((p) => p.connectionState === "connected").pop();
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local_type: local.candidateType, relay_protocol: local.relayProtocol || null,
    local_address: local.address, remote_address: remote.address,
    policy: pc.getConfiguration().iceTransportPolicy,
    bytes_sent: pair.bytesSent, bytes_received: pair.bytesReceived,
  };
}
"""


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is missing (scripts/ensure-browser installs {package})"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_tcp_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


class UdpBlock:
    """Drops UDP between two loopback addresses, both ways (nftables, this namespace only);
    counts what it dropped."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b
        self.on = False

    def __enter__(self) -> UdpBlock:
        rules = (
            f"table inet {NFT_TABLE} {{\n chain output {{\n"
            "  type filter hook output priority 0;\n"
            f"  ip saddr {self.a} ip daddr {self.b} meta l4proto udp counter drop\n"
            f"  ip saddr {self.b} ip daddr {self.a} meta l4proto udp counter drop\n"
            " }\n}\n"
        )
        subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True, timeout=10)
        self.on = True
        return self

    def dropped_packets(self) -> int:
        listing = subprocess.run(
            ["nft", "-j", "list", "table", "inet", NFT_TABLE],
            check=True,
            capture_output=True,
            timeout=10,
        )
        total = 0
        for item in json.loads(listing.stdout)["nftables"]:
            for expression in item.get("rule", {}).get("expr", []):
                if "counter" in expression:
                    total += int(expression["counter"]["packets"])
        return total

    def __exit__(self, *exc: object) -> None:
        if self.on:
            subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], check=True, timeout=10)
            self.on = False


@dataclass
class Coturn:
    """A running coturn: TCP on ``TURN_LISTEN_ADDRESS:port``, the REST API secret."""

    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:{TURN_LISTEN_ADDRESS}:{self.port}?transport=tcp"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def coturn_config(folder: Path, port: int, secret: str) -> str:
    """A coturn configuration for loopback: TCP only, TURN REST secret, no CLI, no TLS.

    ``allow-loopback-peers`` lets it relay to 127.x (the server here); never in production.
    """
    return "\n".join(
        [
            f"listening-ip={TURN_LISTEN_ADDRESS}",
            f"listening-port={port}",
            f"relay-ip={RELAY_ADDRESS}",
            "min-port=49152",
            "max-port=65535",
            "use-auth-secret",
            f"static-auth-secret={secret}",
            f"realm={TURN_REALM}",
            "fingerprint",
            "no-udp",
            "no-tls",
            "no-dtls",
            "no-cli",
            "allow-loopback-peers",
            "no-multicast-peers",
            "no-software-attribute",
            f"pidfile={folder / 'turnserver.pid'}",
            f"userdb={folder / 'turndb'}",
            "log-file=stdout",
            "simple-log",
            "verbose",
            "",
        ]
    )


def write_config(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def turn_settings(secret: str, port: int | None) -> dict[str, object]:
    """The server settings for TURN on loopback (``port`` None: no TURN server at all)."""
    settings: dict[str, object] = {"ice_host_addresses": [SERVER_MEDIA_ADDRESS]}
    if port is not None:
        settings.update(
            turn_urls=[f"turn:{TURN_LISTEN_ADDRESS}:{port}?transport=tcp"], turn_secret=secret
        )
    return settings


def new_turn_secret() -> str:
    return secrets.token_urlsafe(24)


@asynccontextmanager
async def running_coturn(folder: Path, port: int, secret: str) -> AsyncIterator[Coturn]:
    """Start ``turnserver`` with a generated config; wait for its TCP port; stop it after."""
    turnserver = require_tool("turnserver", "coturn")
    config = folder / "turnserver.conf"
    log = folder / "turnserver.log"
    await asyncio.to_thread(write_config, config, coturn_config(folder, port, secret))
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            turnserver, "-c", str(config), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection(TURN_LISTEN_ADDRESS, port)
                writer.close()
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"coturn did not listen on {port}:\n{log.read_text()[-2000:]}"
                    ) from None
                await asyncio.sleep(0.1)
        yield Coturn(port=port, secret=secret, log=log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                with suppress(ProcessLookupError):
                    await process.wait()
