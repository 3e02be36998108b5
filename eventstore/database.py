"""The one database interface every package writes its queries against.

SQL is written once, in PostgreSQL's dialect with ``$1``-style parameters;
the SQLite backend translates parameters. What genuinely differs between the
engines lives in :class:`eventstore.dialect.Dialect`, never in callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from eventstore.dialect import Dialect

Row = dict[str, Any]


class Connection(Protocol):
    """Query methods; inside ``Database.transaction()`` they share one transaction."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run a query and return every row."""
        ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Run a query and return its first row, if any."""
        ...

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run a query and return the first column of its first row."""
        ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement and return how many rows it touched."""
        ...

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement once per parameter tuple."""
        ...


class Database(Connection, Protocol):
    """A pool (or single connection) with transactions and a health check."""

    dialect: Dialect

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """Run the body in one transaction; commit on exit, roll back on error."""
        ...

    async def ping(self) -> None:
        """Raise :class:`DatabaseUnavailableError` unless the database answers."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...


# Many ids in one query: a fixed list of parameters padded with NULL (which
# matches nothing) spells the same on both engines and stays well under their
# parameter limits (32,766 on SQLite >= 3.32, 32,767 on Postgres).
IDS_PER_QUERY = 1000
ID_PARAMETERS = ", ".join(f"${n}" for n in range(1, IDS_PER_QUERY + 1))


def padded_chunks(ids: Sequence[str]) -> list[list[str | None]]:
    """``ids`` in chunks of :data:`IDS_PER_QUERY`, each padded with None to that length."""
    chunks: list[list[str | None]] = []
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk: list[str | None] = list(ids[start : start + IDS_PER_QUERY])
        chunks.append(chunk + [None] * (IDS_PER_QUERY - len(chunk)))
    return chunks
