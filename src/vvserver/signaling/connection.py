"""One WebSocket: sending typed messages, closing with a code, rate limiting, the Origin rule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web

from vvserver.domain.errors import Forbidden
from vvserver.domain.visits.bus import CredentialsRevokedEvent
from vvserver.signaling.protocol import AnyServerMessage, ErrorMessage, dump

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
RATE_PER_S = 20.0
RATE_BURST = 40.0
# A socket that keeps sending far over its rate is closed (policy violation).
MAX_RATE_STRIKES = 100

CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008: authentication and abuse
CLOSE_GOING_AWAY = WSCloseCode.GOING_AWAY  # 1001: server shutdown
# 1012: the node that held the call is gone (cluster); reconnect and re-offer at once.
CLOSE_SERVICE_RESTART = WSCloseCode.SERVICE_RESTART
CLOSE_GOING_AWAY = WSCloseCode.GOING_AWAY  # 1001: server shutdown, or a dead socket
# Closing a dead socket sends the close frame but does not wait for the peer's.
ABORT_WAIT_S = 0.5


class TokenBucket:
    """``rate`` messages a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float = RATE_PER_S, burst: float = RATE_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Connection:
    """A WebSocket as the channels see it: sends never raise, closing is idempotent.

    The channel notes the credential it authenticated with (``account_id`` and
    ``session_hash`` for a session cookie, ``kiosk_id`` for a device token); once a
    revocation matches it, ``revoked`` is set and nothing the socket sends is acted on.
    """

    def __init__(self, ws: web.WebSocketResponse, request_id: str, role: str) -> None:
        self.ws = ws
        self.request_id = request_id
        self.role = role
        self.rate = TokenBucket()
        self.rate_strikes = 0
        self.account_id: int | None = None
        self.session_hash: str | None = None
        self.kiosk_id: int | None = None
        self.revoked = False
        # Monotonic time of the latest frame from the peer (a message, a ping or a pong).
        self.last_heard = time.monotonic()

    def revoked_by(self, event: CredentialsRevokedEvent) -> bool:
        """Whether ``event`` revokes the credential this socket authenticated with."""
        if self.kiosk_id is not None and event.kiosk_id == self.kiosk_id:
            return True
        return self.session_hash is not None and event.matches_session(
            self.account_id, self.session_hash
        )

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, message: AnyServerMessage) -> bool:
        """Send one message; False when the socket is gone (the caller need not care).

        A revoked socket gets nothing more but the error that says why it closes.
        """
        if self.ws.closed or (self.revoked and not isinstance(message, ErrorMessage)):
            return False
        try:
            await self.ws.send_str(dump(message))
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("socket %s: send failed: %s", self.request_id, exc)
            return False
        return True

    async def ping(self) -> None:
        """A WebSocket ping (the peer's pong counts as hearing from it)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            if not self.ws.closed:
                await self.ws.ping()

    async def pong(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            if not self.ws.closed:
                await self.ws.pong(data)

    async def error(
        self,
        code: str,
        message: str,
        ref: str | None = None,
        details: dict[str, int | str] | None = None,
    ) -> None:
        await self.send(ErrorMessage(code=code, message=message, ref=ref, details=details))

    async def refuse(self, code: str, message: str) -> None:
        """An authentication problem: a typed error, then close code 1008."""
        await self.error(code, message)
        await self.close(CLOSE_POLICY, code)

    async def close(self, code: int, reason: str) -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode()[:120])

    async def abort(self, code: int, reason: str) -> None:
        """Close a socket whose peer is gone: no waiting for its close frame or a full buffer."""
        if self.ws.closed:
            return
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            async with asyncio.timeout(ABORT_WAIT_S):
                await self.ws.close(code=code, message=reason.encode()[:120], drain=False)


_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port: compared whole (ASVS 4.4.2)


def parse_origin(url: str) -> Origin | None:
    """``scheme://host[:port]`` as (scheme, host, port); None for anything else (``null``...)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def check_origin(request: web.Request, *, public_url: str, behind_tls: bool) -> None:
    """Refuse (403, before the upgrade) a browser page from another site.

    Allowed: no Origin (not a browser, so no ambient cookies), the configured public URL, or
    the request's own host (on https when the server is behind TLS, else the request's own
    scheme). Scheme, host and port must all match. Cookies ride along on cross-site WebSocket
    requests, so this check is what stops another site from opening a socket as a signed-in
    officer.
    """
    given = request.headers.get("Origin")
    if given is None:
        return
    origin = parse_origin(given)
    own_scheme = "https" if behind_tls else request.scheme
    allowed = (parse_origin(public_url), parse_origin(f"{own_scheme}://{request.host}"))
    if origin is not None and origin in allowed:
        return
    logger.warning("websocket refused: foreign origin %r for %s", given[:100], request.path)
    raise Forbidden("this origin may not open a socket here", code="origin_not_allowed")
