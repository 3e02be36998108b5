"""PostgreSQL backend: an asyncpg pool behind the :class:`Database` interface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from eventstore.database import Connection, Row
from eventstore.dialect import POSTGRES
from eventstore.errors import DatabaseUnavailableError, UniqueViolationError

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
_T = TypeVar("_T")
_ACQUIRE_TIMEOUT = 5.0
_ROLLBACK_TIMEOUT = 2.0
_CLOSE_TIMEOUT = 3.0


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn driver exceptions into the storage layer's own."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise UniqueViolationError(exc.constraint_name or "unique constraint") from exc
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailableError(f"database unavailable: {type(exc).__name__}") from exc


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection:
    """One acquired connection; its methods translate driver errors."""

    def __init__(self, conn: asyncpg.Connection | PoolConnectionProxy) -> None:
        self._conn = conn

    async def _run(self, call: Awaitable[_T]) -> _T:
        with _translated_errors():
            try:
                return await call
            except asyncio.CancelledError:
                # asyncpg would send a cancel request and wait for the server;
                # on a server that stopped answering that wait never ends.
                self._conn.terminate()
                raise

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._run(self._conn.fetch(sql, *args))]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self._run(self._conn.fetchrow(sql, *args))
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run(self._conn.fetchval(sql, *args))

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._run(self._conn.execute(sql, *args)))

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._run(self._conn.executemany(sql, rows))


async def _roll_back_or_drop(
    conn: asyncpg.Connection | PoolConnectionProxy, transaction: Transaction
) -> None:
    """Roll back, but never wait long for a server that stopped answering.

    A task cancelled mid-transaction (at shutdown, say) would otherwise wait
    for ROLLBACK up to the command timeout; dropping the connection rolls the
    transaction back on the server just as surely.
    """
    try:
        async with asyncio.timeout(_ROLLBACK_TIMEOUT):
            await asyncio.shield(transaction.rollback())
    except (TimeoutError, asyncio.CancelledError, *_UNAVAILABLE, asyncpg.PostgresError):
        conn.terminate()


class PostgresDatabase:
    """A pool of asyncpg connections.

    Connections that die (the server restarted) are discarded by the pool and
    replaced on the next acquire, so the node recovers without a restart.
    """

    dialect = POSTGRES

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, *, max_size: int = 10) -> AsyncIterator[PostgresDatabase]:
        """Open a pool for the lifetime of the context.

        Raises:
            DatabaseUnavailableError: the server cannot be reached.
        """
        with _translated_errors():
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=max_size,
                timeout=_ACQUIRE_TIMEOUT,
                command_timeout=60,
                reset=_keep_session,
            )
        try:
            yield cls(pool)
        finally:
            await _close_pool(pool)

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[_PostgresConnection]:
        with _translated_errors():
            async with self._pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                yield _PostgresConnection(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._acquire() as conn:
            return await conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._acquire() as conn:
            return await conn.execute(sql, *args)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self._acquire() as conn:
            await conn.executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One transaction on one pooled connection."""
        with _translated_errors():
            async with self._pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                wrapped = _PostgresConnection(conn)
                transaction = conn.transaction()
                await wrapped._run(transaction.start())
                try:
                    yield wrapped
                except BaseException:
                    await _roll_back_or_drop(conn, transaction)
                    raise
                await wrapped._run(transaction.commit())

    async def ping(self) -> None:
        """Raise unless a trivial query answers within two seconds."""
        async with asyncio.timeout(2.0):
            await self.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close the pool."""
        await _close_pool(self._pool)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's reset statement.

    By default the pool sends ``RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()`` on every release: a second round trip for
    every statement, on the path of every commit. Nothing here leaves session
    state behind (no SET, LISTEN, cursors or session advisory locks; the
    migration lock is transaction-scoped), and the pool still rolls back a
    transaction left open before calling this.
    """


async def _close_pool(pool: asyncpg.Pool) -> None:
    # A graceful close waits for the server to answer each connection's
    # Terminate; a hung database (network partition) would hold the node's
    # shutdown forever, so after a bound the connections are simply dropped.
    try:
        await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
    except TimeoutError:
        pool.terminate()
