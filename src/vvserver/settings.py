"""Server settings: CLI flags and ``VV_*`` environment variables into one typed model."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A node name goes into metrics labels, logs and the cluster's node ids.
NODE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
MAX_WORKERS = 256


def default_node_name() -> str:
    """The host's short name, made fit for a node name (``node`` when nothing fits)."""
    name = socket.gethostname().split(".")[0]
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:63].strip("-._")
    return cleaned or "node"


def cores() -> int:
    """The cores this process may run on (``--workers auto``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Everything the server reads from its environment. No module-level state anywhere else."""

    model_config = SettingsConfigDict(env_prefix="VV_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    demo: bool = False
    # The name families and staff see in the pages' header and tab, e.g. "Demo County Jail visits"
    # (unset: "vvserver visits").
    site_name: str | None = Field(default=None, min_length=1, max_length=80)
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
    # Staff multi-factor sign-in (TOTP, RFC 6238): administrators must use it unless this is
    # false (officers: the facility's ``officer_mfa_required``). ``mfa_totp_window`` is how many
    # 30-second steps either side of the server's time are also accepted: 0 (the default) takes
    # only the current code, a lifetime of 30 s as ASVS 5.0 6.5.5 asks; 1 forgives clock drift
    # and slow typing (a code then lives up to 90 s).
    admin_mfa_required: bool = True
    mfa_issuer: str = Field(default="vvserver", min_length=1, max_length=60)
    mfa_totp_window: int = Field(default=0, ge=0, le=2)
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
    # A recording whose legal hold is lifted after its purge date is purged this many days after
    # the lift, never at once (docs/security.md, "Legal hold").
    hold_release_grace_days: int = Field(default=7, ge=0, le=365)
    ice_servers: list[dict[str, object]] = Field(default_factory=list)
    # ICE host candidate addresses; empty = the machine's interfaces. Tests use ["127.0.0.1"].
    ice_host_addresses: list[str] = Field(default_factory=list)
    # TURN REST API (coturn ``use-auth-secret``): with both set, clients get short-lived
    # credentials for these URLs, valid ``turn_ttl_s`` seconds.
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)
    # A side whose media connection (ICE/DTLS) has not connected this long after it joined is
    # told so (both sides), staff get an alert, and clients retry through TURN (relay only).
    media_connect_timeout_s: float = Field(default=15.0, ge=3.0, le=120.0)
    # Folder of the web pages (HTML, JS, CSS); unset = the ``web/`` folder of this checkout.
    web_dir: Path | None = None
    # Bench-only: "stock" swaps the passthrough relay for aiortc's decode/re-encode path
    # (MediaRelay + MediaRecorder) so scripts/bench_calls.py can compare both in one run.
    media_relay: Literal["passthrough", "stock"] = "passthrough"
    # The server's event loop: uvloop moves each relayed packet with less CPU than asyncio's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # The relay's per-packet SRTP and header work in its C extension (False: in Python, for
    # comparisons). Process-wide: the media modules read VV_MEDIA_NATIVE when they load
    # (vvserver.media.srtp_session.NATIVE); the app logs which path it runs.
    media_native: bool = True
    # Cluster: the prefix of every Redis key and channel (one cluster per prefix).
    redis_key_prefix: str = "vv"

    # --- the process model (docs/deployment.md) ------------------------------------------
    # Worker processes sharing the HTTP port (SO_REUSEPORT); "auto" = one per core. More than
    # one needs PostgreSQL and Redis.
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    # Which worker this process is (set by the supervising process for each worker it starts).
    worker_index: int = Field(default=0, ge=0, lt=MAX_WORKERS)
    # This machine's name in the cluster, in metrics and logs; each worker is ``<name>/<index>``.
    node_name: str = Field(default_factory=default_node_name, pattern=NODE_NAME_PATTERN)
    # The address browsers and kiosks reach this node's media at: its ICE host candidate
    # (``ice_host_addresses`` when that is not set itself).
    public_address: str | None = None
    # Cluster mode: the Redis server the nodes share (``redis://host:6379/0``).
    redis_url: str | None = None
    # SIGTERM/SIGINT: calls may go on this long, then their clients are told to re-join.
    drain_timeout_s: float = Field(default=120.0, ge=0, le=24 * 3600)
    # ``GET /metrics`` from other than loopback needs ``Authorization: Bearer <this>``.
    metrics_token: str | None = Field(default=None, min_length=16)

    # Every signaling socket gets a ``heartbeat`` message and a WebSocket ping this often; a
    # socket that sends nothing (not even the pong) for 3 of these is dead and is closed.
    signaling_heartbeat_s: float = Field(default=2.0, ge=0.2, le=30.0)
    # After the server starts, kiosks get this long to reconnect before a visit starting without
    # its kiosk raises the ``kiosk_offline`` alert (their sockets were cut by the restart).
    kiosk_offline_grace_s: float = Field(default=15.0, ge=0.0, le=600.0)

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return min(cores(), MAX_WORKERS)
        return value

    @model_validator(mode="after")
    def _public_address_is_the_ice_host(self) -> Settings:
        if self.public_address and not self.ice_host_addresses:
            self.ice_host_addresses = [self.public_address]
        return self

    @property
    def node_id(self) -> str:
        """This process in the cluster: ``<node_name>/<worker_index>``."""
        return f"{self.node_name}/{self.worker_index}"

    @property
    def cluster_mode(self) -> bool:
        """Redis is configured: this process is one node of several (calls move between them)."""
        return self.redis_url is not None

    def process_model_problem(self) -> str | None:
        """Why this process model cannot run (said at start, before anything), else None.

        More than one process shares visits, sessions and timed work: SQLite serves one
        process only, and without Redis the processes would not see each other's calls.
        """
        several = f"--workers {self.workers}" if self.workers > 1 else None
        if several is None and not self.cluster_mode:
            return None
        what = several or "a cluster node (--redis-url)"
        if self.is_sqlite:
            return (
                f"{what} needs PostgreSQL: SQLite serves one process only. Give "
                "--database-url postgresql+asyncpg://USER@HOST/DB (VV_DATABASE_URL), or run "
                "one process without --workers and --redis-url."
            )
        if not self.cluster_mode:
            return (
                f"{what} needs Redis: the worker processes share calls, presence and events "
                "through it. Give --redis-url redis://HOST:6379/0 (VV_REDIS_URL), or run one "
                "process without --workers."
            )
        return None

    @property
    def resolved_web_dir(self) -> Path:
        return self.web_dir or Path(__file__).resolve().parents[2] / "web"

    @property
    def resolved_ice_host_addresses(self) -> list[str]:
        """This node's ICE host addresses: ``public_address`` when set, else the list."""
        return [self.public_address] if self.public_address else list(self.ice_host_addresses)

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
