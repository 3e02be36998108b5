"""Fixtures shared by every test package.

``database_url`` is parametrised over SQLite and PostgreSQL, so a test that
uses it (or ``db``, ``settings``, ``client``) runs once per backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from collab.app import create_app
from collab.config import Settings
from eventstore import Database, apply_migrations, open_database
from tests.services import REDIS_URL, fresh_postgres_schema, require

Client = TestClient[web.Request, web.Application]
TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/collab.db"
        return
    async with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty Postgres schema (for Postgres-only tests)."""
    async with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """The test Redis; skipped or failed when it does not answer."""
    require(REDIS_URL, 6379, "redis")
    return REDIS_URL


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open, migrated database on each backend."""
    async with open_database(database_url) as database:
        await apply_migrations(database)
        yield database


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for one in-process node on a fresh database."""
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        node_id="test-node",
        room_grace_seconds=0.2,
    )


@pytest.fixture
async def client(settings: Settings, aiohttp_client: AiohttpClient) -> Client:
    """An HTTP/WebSocket client of a node built from ``settings``.

    It keeps no cookies: register and login set session cookies, and a test
    that means to send one says so, so "anonymous" stays anonymous.
    """
    return await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())
