"""Embedded SQLite backend: one file, one writer, one node.

Every call but the event log's append runs on a single dedicated thread (the
append runs inline: see :meth:`SqliteDatabase.execute_guarded`). An asyncio
lock gives a transaction exclusive use of the connection, so statements of
concurrent coroutines never interleave inside it and the connection is used by
one thread at a time. Several nodes need the PostgreSQL backend.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from eventstore.database import Connection, Row
from eventstore.dialect import SQLITE
from eventstore.errors import DatabaseUnavailableError, UniqueViolationError

_T = TypeVar("_T")


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise UniqueViolationError(str(exc)) from exc
        raise
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "unable to open" in str(exc) or "disk" in str(exc):
            raise DatabaseUnavailableError(f"database unavailable: {exc}") from exc
        raise


def _open_connection(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = _dict_row
    # WAL lets readers (the CLI, `collab replay`) run while the server writes.
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives a killed process (only power loss can drop
    # the newest commits) and avoids an fsync per commit.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


class _SqliteCalls:
    """Statement execution on the dedicated thread (no locking here)."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        with _translated_errors():
            return await loop.run_in_executor(self._executor, fn, *args)

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        return list(self._conn.execute(SQLITE.translate(sql), args).fetchall())

    def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        return self._conn.execute(SQLITE.translate(sql), args).rowcount

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(SQLITE.translate(sql), rows)

    def _guarded(
        self, guard: str, guard_args: tuple[Any, ...], sql: str, rows: list[tuple[Any, ...]]
    ) -> bool:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if self._conn.execute(SQLITE.translate(guard), guard_args).rowcount == 0:
                self._conn.execute("ROLLBACK")
                return False
            self._conn.executemany(SQLITE.translate(sql), rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return True


class _SqliteConnection:
    """The query methods, run without taking the lock (the caller holds it)."""

    def __init__(self, calls: _SqliteCalls) -> None:
        self._calls = calls

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._calls.run(self._calls._fetch, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._calls.run(self._calls._execute, sql, args)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._calls.run(self._calls._executemany, sql, rows)


class SqliteDatabase:
    """The embedded database."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self._lock = asyncio.Lock()
        self._direct = _SqliteConnection(_SqliteCalls(conn, executor))

    @classmethod
    @asynccontextmanager
    async def connect(cls, path: str) -> AsyncIterator[SqliteDatabase]:
        """Open (creating if needed) the database file for the lifetime of the context."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _open_connection, path)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise DatabaseUnavailableError(f"cannot open SQLite database {path}: {exc}") from exc
        db = cls(conn, executor)
        try:
            yield db
        finally:
            await db.close()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await self._direct.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._lock:
            return await self._direct.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._lock:
            return await self._direct.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return await self._direct.execute(sql, *args)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self._lock, self.transaction_unlocked() as conn:
            await conn.executemany(sql, rows)

    async def execute_guarded(
        self, guard: str, guard_args: tuple[Any, ...], sql: str, rows: list[tuple[Any, ...]]
    ) -> bool:
        """In one transaction, run ``guard``, then (if it touched a row) ``sql`` per row.

        Unlike every other call this runs on the event loop's own thread. A
        WAL commit without fsync takes tens of microseconds, while handing it
        to the database thread costs more: with the loop busy, that thread
        waits for the GIL for every statement and row (up to the interpreter's
        5 ms switch interval each), which made a busy room's commits take tens
        of milliseconds. Holding the lock keeps the database thread idle
        meanwhile, so the connection is still used by one thread at a time.

        Returns:
            False, with nothing changed, when the guard touched no row.
        """
        async with self._lock:
            calls = self._direct._calls
            with _translated_errors():
                return calls._guarded(guard, guard_args, sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """Exclusive use of the connection inside ``BEGIN IMMEDIATE``."""
        async with self._lock, self.transaction_unlocked() as conn:
            yield conn

    @asynccontextmanager
    async def transaction_unlocked(self) -> AsyncIterator[Connection]:
        # IMMEDIATE takes the write lock up front, so a reader-turned-writer
        # never fails half-way with SQLITE_BUSY.
        await self._direct.execute("BEGIN IMMEDIATE")
        try:
            yield self._direct
        except BaseException:
            await asyncio.shield(self._direct.execute("ROLLBACK"))
            raise
        await self._direct.execute("COMMIT")

    async def ping(self) -> None:
        """The file is local; a trivial query proves the thread is alive."""
        await self.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
