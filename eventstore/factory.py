"""Choose the backend from the database URL; drivers are imported lazily."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventstore.database import Database


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///PATH`` URL (``sqlite:///:memory:`` too)."""
    rest = url.partition("://")[2]
    # sqlite:///./data/x.db and sqlite:////abs/x.db both carry one extra slash.
    return rest[1:] if rest.startswith("/") else rest


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    """Connect to the database named by ``url`` for the lifetime of the context.

    Raises:
        ValueError: the URL's scheme is not supported.
        DatabaseUnavailableError: the database cannot be reached.
    """
    scheme = url.partition("://")[0]
    if scheme in {"postgres", "postgresql"}:
        from eventstore.postgres import PostgresDatabase

        async with PostgresDatabase.connect(url) as pg:
            yield pg
    elif scheme == "sqlite":
        from eventstore.sqlite import SqliteDatabase

        async with SqliteDatabase.connect(sqlite_path(url)) as lite:
            yield lite
    else:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
