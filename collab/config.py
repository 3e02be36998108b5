"""Settings read once from the environment (and an optional ``.env`` file).

Every knob of the server lives in :class:`Settings`; nothing else reads
``os.environ``. An invalid value raises :class:`ConfigError`, whose message
names the variable, so start-up fails with one clear line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from executor.options import JobOptions, OptionsError

DEFAULT_DATABASE_URL = "sqlite:///./data/collab.db"
_DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
# PyJWT's minimum HMAC key length for HS256 (auth.signing_key enforces it too).
_MIN_JWT_SECRET_BYTES = 32
_N = TypeVar("_N", int, float)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a node needs to know about its deployment."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "collab"
    trusted_proxies: tuple[Network, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    jwt_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    data_dir: Path = Path("./data")
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    max_message_bytes: int = 8 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    snapshot_every: int = 500
    room_grace_seconds: float = 30.0
    trash_days: float = 30.0
    max_connections_per_document: int = 200
    max_connections_per_user_per_document: int = 20
    max_queued_bytes_per_connection: int = 8 * 1024 * 1024
    updates_per_second: float = 1000.0
    update_burst: int = 2000
    commit_window_ms: float = 0.0
    event_loop: str = "asyncio"
    auth_failures_per_minute: int = 10
    jobs: JobOptions = field(default_factory=JobOptions)
    shutdown_timeout: float = 10.0

    @property
    def job_concurrency(self) -> int:
        """Jobs run at once by this node (embedded runner) or worker."""
        return self.jobs.concurrency

    @property
    def is_postgres(self) -> bool:
        """True when the database URL selects PostgreSQL."""
        return self.database_url.split("://", 1)[0] in ("postgres", "postgresql")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables.

        Args:
            environ: the variables to read; ``os.environ`` when omitted.

        Raises:
            ConfigError: a value is malformed; the message names the variable.
        """
        source = os.environ if environ is None else environ
        env = _Env(source)
        database_url = env.first("COLLAB_DATABASE_URL", "DATABASE_URL") or DEFAULT_DATABASE_URL
        redis_url = env.first("COLLAB_REDIS_URL", "REDIS_URL") or None
        _check_database_url(database_url)
        _check_redis_url(redis_url, database_url)
        jwt_secret = env.first("COLLAB_JWT_SECRET") or None
        _check_jwt_secret(jwt_secret)
        defaults = cls()
        redis_prefix = env.first("COLLAB_REDIS_PREFIX") or defaults.redis_prefix
        try:
            jobs = JobOptions.from_env(source, redis_prefix=redis_prefix)
        except OptionsError as exc:  # its message names the variable
            raise ConfigError(str(exc)) from None
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            trusted_proxies=parse_networks(env.first("COLLAB_TRUSTED_PROXIES")),
            allowed_origins=parse_origins(env.first("COLLAB_ALLOWED_ORIGINS")),
            jwt_secret=jwt_secret,
            host=env.first("COLLAB_HOST") or defaults.host,
            port=env.integer("COLLAB_PORT", defaults.port, low=0, high=65535),
            node_id=env.first("COLLAB_NODE_ID") or defaults.node_id,
            data_dir=Path(env.first("COLLAB_DATA_DIR") or defaults.data_dir),
            access_token_ttl=env.integer(
                "COLLAB_ACCESS_TOKEN_TTL", defaults.access_token_ttl, low=1
            ),
            refresh_token_ttl=env.integer(
                "COLLAB_REFRESH_TOKEN_TTL", defaults.refresh_token_ttl, low=1
            ),
            max_message_bytes=env.integer(
                "COLLAB_MAX_MESSAGE_BYTES", defaults.max_message_bytes, low=1024
            ),
            snapshot_every=env.integer("COLLAB_SNAPSHOT_EVERY", defaults.snapshot_every, low=1),
            room_grace_seconds=env.number(
                "COLLAB_ROOM_GRACE_SECONDS", defaults.room_grace_seconds, low=0
            ),
            updates_per_second=env.number(
                "COLLAB_UPDATES_PER_SECOND", defaults.updates_per_second, low=1.0
            ),
            update_burst=env.integer("COLLAB_UPDATE_BURST", defaults.update_burst, low=1),
            trash_days=env.number("COLLAB_TRASH_DAYS", defaults.trash_days, low=0),
            commit_window_ms=env.number(
                "COLLAB_COMMIT_WINDOW_MS", defaults.commit_window_ms, low=0.0
            ),
            event_loop=_event_loop(env.first("COLLAB_EVENT_LOOP") or defaults.event_loop),
            **_connection_limits(env, defaults),
            jobs=jobs,
        )


def _connection_limits(env: _Env, defaults: Settings) -> dict[str, int]:
    """Per-document and per-user connection caps, and the per-connection send queue."""
    per_document = env.integer(
        "COLLAB_MAX_CONNECTIONS_PER_DOCUMENT", defaults.max_connections_per_document, low=1
    )
    per_user = env.integer(
        "COLLAB_MAX_CONNECTIONS_PER_USER_PER_DOCUMENT",
        min(defaults.max_connections_per_user_per_document, per_document),
        low=1,
        high=per_document,
    )
    queued = env.integer(
        "COLLAB_MAX_QUEUED_BYTES_PER_CONNECTION",
        defaults.max_queued_bytes_per_connection,
        low=64 * 1024,
    )
    return {
        "max_connections_per_document": per_document,
        "max_connections_per_user_per_document": per_user,
        "max_queued_bytes_per_connection": queued,
    }


class _Env:
    """Typed reads of environment variables with errors that name them."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def first(self, *names: str) -> str:
        for name in names:
            value = self._environ.get(name, "").strip()
            if value:
                return value
        return ""

    def integer(self, name: str, default: int, *, low: int, high: int | None = None) -> int:
        raw = self.first(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        return _in_range(name, value, low, high)

    def number(self, name: str, default: float, *, low: float) -> float:
        raw = self.first(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        return _in_range(name, value, low, None)


EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop(name: str) -> str:
    if name not in EVENT_LOOPS:
        choices = ", ".join(EVENT_LOOPS)
        raise ConfigError(f"COLLAB_EVENT_LOOP must be one of {choices}, not {name!r}")
    return name


def _in_range(name: str, value: _N, low: _N, high: _N | None) -> _N:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return value


def _check_database_url(url: str) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _DATABASE_SCHEMES or not rest:
        raise ConfigError(
            f"COLLAB_DATABASE_URL must start with sqlite:///, postgresql:// or postgres://,"
            f" got {url.split('@')[-1]!r}"
        )


def _check_redis_url(redis_url: str | None, database_url: str) -> None:
    if redis_url is None:
        return
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"COLLAB_REDIS_URL must start with redis:// or rediss://, got {redis_url!r}"
        )
    if database_url.startswith("sqlite"):
        raise ConfigError(
            "COLLAB_REDIS_URL is set but COLLAB_DATABASE_URL is SQLite: several nodes need"
            " PostgreSQL (set COLLAB_DATABASE_URL=postgresql://...)"
        )


def _check_jwt_secret(secret: str | None) -> None:
    if secret is not None and len(secret.encode()) < _MIN_JWT_SECRET_BYTES:
        raise ConfigError(
            f"COLLAB_JWT_SECRET must be at least {_MIN_JWT_SECRET_BYTES} bytes long"
            f" (got {len(secret.encode())})"
        )


def parse_networks(spec: str, variable: str = "COLLAB_TRUSTED_PROXIES") -> tuple[Network, ...]:
    """Parse a comma-separated list of IP addresses or CIDR networks.

    Raises:
        ConfigError: an entry is not an address or network.
    """
    networks = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"{variable}: {entry!r} is not an IP address or network") from None
    return tuple(networks)


def parse_origins(spec: str, variable: str = "COLLAB_ALLOWED_ORIGINS") -> tuple[str, ...]:
    """Parse a comma-separated list of web origins (``https://app.example.com[:port]``).

    Origins are compared as browsers send them: lower case, no path, no
    trailing slash. A wildcard is refused: with cookies it would let any
    site act for the user.

    Raises:
        ConfigError: an entry is not an http(s) origin.
    """
    origins = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        origin = entry.lower().rstrip("/")
        try:
            parts = urlsplit(origin)
            valid = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and not parts.path
                and not parts.query
                and not parts.fragment
                and parts.username is None
                and (parts.port is None or parts.port > 0)
            )
        except ValueError:
            valid = False
        if not valid or "*" in origin:
            raise ConfigError(
                f"{variable}: {entry!r} is not an origin like https://app.example.com"
            )
        origins.append(origin)
    return tuple(origins)
