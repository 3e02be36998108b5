"""Configuration from the environment: defaults, fallbacks, and how bad values fail.

Misconfiguration is tested through a real ``collab serve`` process, because what
matters is what an operator sees: a non-zero exit and one line on stderr that
names the variable, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import uvloop

from collab.config import DEFAULT_DATABASE_URL, ConfigError, Settings
from collab.server import new_event_loop
from tests.services import free_port
from tests.support.nodes import node_environment, running_node

SECRET = "k" * 48


def serve_fails(env: dict[str, str], cwd: Path, port: int | None = None) -> tuple[int, str]:
    """Run ``collab serve`` and return its exit code and stderr; it must not start.

    The port is free unless given: ``serve`` binds it before opening the
    database, so a busy port would hide a database failure. A node that
    wrongly starts runs into ``_run_serve``'s timeout.
    """
    return _run_serve(env, cwd, free_port() if port is None else port)


def _run_serve(env: dict[str, str], cwd: Path, port: int) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "collab", "serve", "--port", str(port)],
        env=node_environment(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr


def assert_one_clear_line(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


# --- Settings.from_env ------------------------------------------------------------


def test_defaults_match_the_documentation() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./data/collab.db"
    assert not settings.is_postgres
    assert settings.redis_url is None
    assert settings.jwt_secret is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.node_id == f"{socket.gethostname()}-{os.getpid()}"
    assert settings.data_dir == Path("data")
    assert settings.trash_days == 30


def test_trash_days_is_read() -> None:
    assert Settings.from_env({"COLLAB_TRASH_DAYS": "7"}).trash_days == 7
    assert Settings.from_env({"COLLAB_TRASH_DAYS": "0.5"}).trash_days == 0.5


def test_every_documented_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "COLLAB_DATABASE_URL": "postgresql://u@db:5432/collab",
            "COLLAB_REDIS_URL": "redis://cache:6379/1",
            "COLLAB_JWT_SECRET": SECRET,
            "COLLAB_HOST": "0.0.0.0",
            "COLLAB_PORT": "9000",
            "COLLAB_NODE_ID": "node-a",
        }
    )
    assert settings.database_url == "postgresql://u@db:5432/collab"
    assert settings.is_postgres
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.jwt_secret == SECRET
    assert (settings.host, settings.port, settings.node_id) == ("0.0.0.0", 9000, "node-a")


def test_connection_limits_default_and_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert defaults.max_connections_per_document == 200
    assert defaults.max_connections_per_user_per_document == 20
    assert defaults.max_queued_bytes_per_connection == 8 * 1024 * 1024
    assert (defaults.updates_per_second, defaults.update_burst) == (1000.0, 2000)
    settings = Settings.from_env(
        {
            "COLLAB_MAX_CONNECTIONS_PER_DOCUMENT": "50",
            "COLLAB_MAX_CONNECTIONS_PER_USER_PER_DOCUMENT": "5",
            "COLLAB_MAX_QUEUED_BYTES_PER_CONNECTION": "1048576",
        }
    )
    assert settings.max_connections_per_document == 50
    assert settings.max_connections_per_user_per_document == 5
    assert settings.max_queued_bytes_per_connection == 1024 * 1024


def test_per_user_cap_defaults_below_a_small_document_cap() -> None:
    settings = Settings.from_env({"COLLAB_MAX_CONNECTIONS_PER_DOCUMENT": "8"})
    assert settings.max_connections_per_user_per_document == 8


def test_unprefixed_urls_are_fallbacks() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgres://u@db/collab", "REDIS_URL": "redis://cache:6379/0"}
    )
    assert settings.database_url == "postgres://u@db/collab"
    assert settings.redis_url == "redis://cache:6379/0"


def test_prefixed_urls_win_over_fallbacks() -> None:
    settings = Settings.from_env(
        {
            "COLLAB_DATABASE_URL": "postgresql://u@primary/collab",
            "DATABASE_URL": "postgresql://u@other/collab",
            "COLLAB_REDIS_URL": "redis://primary:6379/0",
            "REDIS_URL": "redis://other:6379/0",
        }
    )
    assert settings.database_url == "postgresql://u@primary/collab"
    assert settings.redis_url == "redis://primary:6379/0"


def test_empty_values_mean_unset() -> None:
    settings = Settings.from_env({"COLLAB_REDIS_URL": "", "COLLAB_PORT": " ", "COLLAB_HOST": ""})
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COLLAB_DATABASE_URL", "mysql://u@db/collab"),
        ("COLLAB_DATABASE_URL", "not a url"),
        ("COLLAB_REDIS_URL", "http://cache:6379"),
        ("COLLAB_PORT", "abc"),
        ("COLLAB_PORT", "70000"),
        ("COLLAB_PORT", "-1"),
        ("COLLAB_ACCESS_TOKEN_TTL", "0"),
        ("COLLAB_REFRESH_TOKEN_TTL", "soon"),
        ("COLLAB_MAX_MESSAGE_BYTES", "12"),
        ("COLLAB_SNAPSHOT_EVERY", "1.5"),
        ("COLLAB_ROOM_GRACE_SECONDS", "-3"),
        ("COLLAB_JOB_CONCURRENCY", "many"),
        ("COLLAB_UPDATES_PER_SECOND", "0.5"),
        ("COLLAB_UPDATE_BURST", "0"),
        ("COLLAB_TRASH_DAYS", "-1"),
        ("COLLAB_TRASH_DAYS", "forever"),
        ("COLLAB_ALLOWED_ORIGINS", "*"),
        ("COLLAB_ALLOWED_ORIGINS", "https://*.example.com"),
        ("COLLAB_ALLOWED_ORIGINS", "ftp://example.com"),
        ("COLLAB_ALLOWED_ORIGINS", "https://example.com/app"),
        ("COLLAB_ALLOWED_ORIGINS", "example.com"),
        ("COLLAB_ALLOWED_ORIGINS", "https://user@example.com"),
        ("COLLAB_ALLOWED_ORIGINS", "https://example.com:0"),
        ("COLLAB_MAX_CONNECTIONS_PER_DOCUMENT", "0"),
        ("COLLAB_MAX_CONNECTIONS_PER_USER_PER_DOCUMENT", "0"),
        ("COLLAB_MAX_CONNECTIONS_PER_USER_PER_DOCUMENT", "201"),
        ("COLLAB_MAX_QUEUED_BYTES_PER_CONNECTION", "1000"),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str) -> None:
    env = {"COLLAB_DATABASE_URL": "postgresql://u@db/collab", name: value}
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_allowed_origins_default_to_none_and_are_normalised() -> None:
    assert Settings.from_env({}).allowed_origins == ()
    settings = Settings.from_env(
        {"COLLAB_ALLOWED_ORIGINS": " https://App.Example.com/ , http://localhost:5173,,"}
    )
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:5173")


def test_redis_with_sqlite_is_refused() -> None:
    with pytest.raises(ConfigError, match="several nodes need PostgreSQL") as info:
        Settings.from_env({"COLLAB_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert "COLLAB_REDIS_URL" in str(info.value)


def test_database_credentials_stay_out_of_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"COLLAB_DATABASE_URL": "mysql://admin:hunter2@db/collab"})
    assert "hunter2" not in str(info.value)


# --- collab serve with a bad configuration ------------------------------------------


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"COLLAB_DATABASE_URL": "mysql://db/collab"}, ["COLLAB_DATABASE_URL"]),
        ({"DATABASE_URL": "oracle://db/collab"}, ["COLLAB_DATABASE_URL"]),
        ({"COLLAB_PORT": "abc"}, ["COLLAB_PORT", "abc"]),
        ({"COLLAB_PORT": "99999"}, ["COLLAB_PORT"]),
        (
            {"COLLAB_REDIS_URL": "redis://127.0.0.1:6379/0"},
            ["COLLAB_REDIS_URL", "several nodes need PostgreSQL"],
        ),
        ({"COLLAB_JWT_SECRET": "too-short"}, ["COLLAB_JWT_SECRET"]),
        ({"COLLAB_JOB_REAP_SECONDS": "often"}, ["COLLAB_JOB_REAP_SECONDS"]),
    ],
    ids=[
        "scheme",
        "fallback-scheme",
        "port-not-a-number",
        "port-range",
        "redis-sqlite",
        "jwt",
        "job-option",
    ],
)
def test_serve_exits_with_one_clear_line(
    tmp_path: Path, env: dict[str, str], needles: list[str]
) -> None:
    code, stderr = serve_fails(env, tmp_path)
    assert code != 0
    assert_one_clear_line(stderr, *needles)


def test_unreachable_database_fails_start_up_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/test"
        code, stderr = serve_fails({"COLLAB_DATABASE_URL": url}, tmp_path)
    assert code != 0
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("collab: cannot start: database unavailable")


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COLLAB_PORT=not-a-port\n", encoding="utf-8")
    code, stderr = serve_fails({}, tmp_path)
    assert code != 0
    assert_one_clear_line(stderr, "COLLAB_PORT", "not-a-port")


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "COLLAB_DATABASE_URL=mysql://from-dotenv/collab\n", encoding="utf-8"
    )
    code, stderr = serve_fails({"COLLAB_DATABASE_URL": "oracle://from-env/collab"}, tmp_path)
    assert code != 0
    assert_one_clear_line(stderr, "COLLAB_DATABASE_URL", "from-env")
    assert "from-dotenv" not in stderr


async def test_embedded_default_starts_from_a_dotenv(tmp_path: Path) -> None:
    """No variables but a .env: SQLite under ./data, a generated 0600 secret, a warning."""
    (tmp_path / ".env").write_text("COLLAB_NODE_ID=from-dotenv\n", encoding="utf-8")
    async with running_node({}, workdir=tmp_path) as node:
        async with aiohttp.ClientSession() as http, http.get(f"{node.url}/readyz") as response:
            assert response.status == 200
        assert await node.stop() == 0
    log = node.log_text()
    assert "node from-dotenv serving" in log
    assert (tmp_path / "data" / "collab.db").is_file()
    secret_file = tmp_path / "data" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "COLLAB_JWT_SECRET is not set" in log


def test_commit_window_and_event_loop_are_read() -> None:
    defaults = Settings.from_env({})
    assert (defaults.commit_window_ms, defaults.event_loop) == (0.0, "asyncio")
    settings = Settings.from_env({"COLLAB_COMMIT_WINDOW_MS": "2.5", "COLLAB_EVENT_LOOP": "uvloop"})
    assert (settings.commit_window_ms, settings.event_loop) == (2.5, "uvloop")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COLLAB_COMMIT_WINDOW_MS", "-1"),
        ("COLLAB_COMMIT_WINDOW_MS", "soon"),
        ("COLLAB_EVENT_LOOP", "trio"),
        ("COLLAB_EVENT_LOOP", "UVLOOP; rm -rf /"),
    ],
)
def test_bad_commit_window_or_event_loop_is_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_the_chosen_event_loop_is_used() -> None:
    for name, kind in (("uvloop", uvloop.Loop), ("asyncio", asyncio.AbstractEventLoop)):
        loop = new_event_loop(name)
        try:
            assert isinstance(loop, kind)
            assert name == "uvloop" or not isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
