"""The database interface behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from eventstore import Database, UniqueViolationError, apply_migrations
from eventstore.migrations import load_migrations


async def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    versions = [m.version for m in load_migrations(db.dialect.name)]
    recorded = [
        r["version"]
        for r in await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    ]
    assert recorded == versions
    assert await apply_migrations(db) == []


async def test_both_engines_ship_the_same_migrations() -> None:
    postgres = [(m.version, m.name) for m in load_migrations("postgres")]
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    assert postgres == sqlite


async def test_round_trip_of_types(db: Database) -> None:
    await _insert_user(db, "u1", "a@example.com")
    row = await db.fetchrow("SELECT id, email, created_at FROM users WHERE id = $1", "u1")
    assert row == {"id": "u1", "email": "a@example.com", "created_at": 1.5}
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    assert await db.fetchrow("SELECT id FROM users WHERE id = $1", "missing") is None


async def test_unique_violation_is_translated(db: Database) -> None:
    await _insert_user(db, "u1", "a@example.com")
    with pytest.raises(UniqueViolationError):
        await _insert_user(db, "u2", "a@example.com")


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute(_INSERT_USER, "u1", "a@example.com", "A", "h", 1.5)
            raise RuntimeError("abort")
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_concurrent_transactions_do_not_interleave(db: Database) -> None:
    await _insert_user(db, "u1", "a@example.com")
    await db.execute("INSERT INTO doc_heads (doc_id, seq, hash) VALUES ($1, $2, $3)", "d", 0, b"\0")

    async def bump() -> None:
        async with db.transaction() as conn:
            seq = await conn.fetchval(
                "SELECT seq FROM doc_heads WHERE doc_id = $1" + db.dialect.for_update,  # noqa: S608
                "d",
            )
            await asyncio.sleep(0)
            await conn.execute("UPDATE doc_heads SET seq = $1 WHERE doc_id = $2", seq + 1, "d")

    await asyncio.gather(*(bump() for _ in range(20)))
    assert await db.fetchval("SELECT seq FROM doc_heads WHERE doc_id = $1", "d") == 20


async def test_execute_returns_rowcount(db: Database) -> None:
    await _insert_user(db, "u1", "a@example.com")
    await _insert_user(db, "u2", "b@example.com")
    assert await db.execute("DELETE FROM users WHERE created_at > $1", 1.0) == 2


_INSERT_USER = (
    "INSERT INTO users (id, email, display_name, password_hash, created_at)"
    " VALUES ($1, $2, $3, $4, $5)"
)


async def _insert_user(db: Database, user_id: str, email: str) -> None:
    await db.execute(_INSERT_USER, user_id, email, "Name", "hash", 1.5)
