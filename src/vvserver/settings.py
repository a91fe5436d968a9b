"""Server settings: CLI flags and ``VV_*`` environment variables into one typed model."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server reads from its environment. No module-level state anywhere else."""

    model_config = SettingsConfigDict(env_prefix="VV_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    demo: bool = False
    # Public base URL used in emails (join links, verification links).
    public_url: str = "http://127.0.0.1:8080"
    # Secret for signed tokens (join links, audit anchor). Generated into the data dir when unset.
    secret_key: str | None = None
    # Cookies get the Secure flag when the server sits behind TLS.
    behind_tls: bool = False
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 5 * 1024 * 1024
    staff_idle_minutes: int = 30
    visitor_idle_minutes: int = 24 * 60
    lockout_failures: int = 5
    lockout_minutes: int = 15
    # Requests per minute per client address, by kind of endpoint.
    rate_login_per_min: int = 20
    rate_signup_per_min: int = 10
    rate_reset_per_min: int = 10
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "vvserver <no-reply@localhost>"
    # Longest sleep between passes (a safety net): the workers wake for their next deadline and
    # for every commit that changes their input.
    scheduler_interval_s: float = Field(default=30.0, gt=0)
    mailer_interval_s: float = Field(default=30.0, gt=0)
    ice_servers: list[dict[str, object]] = Field(default_factory=list)
    # ICE host candidate addresses; empty = the machine's interfaces. Tests use ["127.0.0.1"].
    ice_host_addresses: list[str] = Field(default_factory=list)
    # TURN REST API (coturn ``use-auth-secret``): with both set, clients get short-lived
    # credentials for these URLs, valid ``turn_ttl_s`` seconds.
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)
    # Folder of the web pages (HTML, JS, CSS); unset = the ``web/`` folder of this checkout.
    web_dir: Path | None = None
    # Bench-only: "stock" swaps the passthrough relay for aiortc's decode/re-encode path
    # (MediaRelay + MediaRecorder) so scripts/bench_calls.py can compare both in one run.
    media_relay: Literal["passthrough", "stock"] = "passthrough"
    # The server's event loop: uvloop moves each relayed packet with less CPU than asyncio's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Every signaling socket gets a ``heartbeat`` message and a WebSocket ping this often; a
    # socket that sends nothing (not even the pong) for 3 of these is dead and is closed.
    signaling_heartbeat_s: float = Field(default=2.0, ge=0.2, le=30.0)
    # After the server starts, kiosks get this long to reconnect before a visit starting without
    # its kiosk raises the ``kiosk_offline`` alert (their sockets were cut by the restart).
    kiosk_offline_grace_s: float = Field(default=15.0, ge=0.0, le=600.0)

    @property
    def resolved_web_dir(self) -> Path:
        return self.web_dir or Path(__file__).resolve().parents[2] / "web"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vvserver.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        for sub in ("", "id-photos", "outbox", "recordings"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)

    def resolved_secret(self) -> bytes:
        """The signing secret: from settings, else a random one kept in the data dir (0600)."""
        if self.secret_key:
            return self.secret_key.encode()
        self.ensure_data_dir()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
