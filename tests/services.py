"""Reachability of the real services the tests use, and per-test isolation.

Postgres and Redis tests run against COLLAB_TEST_DATABASE_URL and
COLLAB_TEST_REDIS_URL. Where a server is unreachable they are skipped, except
under CI=true or COLLAB_REQUIRE_SERVICES=1, where that fails the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

POSTGRES_URL = os.environ.get(
    "COLLAB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    """True when an unreachable service must fail the run instead of skipping."""
    return os.environ.get("CI") == "true" or os.environ.get("COLLAB_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, name: str) -> None:
    """Skip (or, when services are required, fail) unless ``url`` answers."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if services_required():
        pytest.fail(f"{message} (required: CI=true or COLLAB_REQUIRE_SERVICES=1)")
    pytest.skip(f"{message}; set COLLAB_TEST_{name.upper()}_URL or start it")


def with_search_path(url: str, schema: str) -> str:
    """``url`` with a ``search_path`` that asyncpg passes as a server setting."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}search_path={schema}"


@asynccontextmanager
async def fresh_postgres_schema() -> AsyncIterator[str]:
    """A URL whose tables live in a brand-new schema, dropped afterwards."""
    require(POSTGRES_URL, 5432, "database")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
