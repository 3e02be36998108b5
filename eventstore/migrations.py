"""Numbered SQL migrations, one directory per engine, applied once each.

``schema/<engine>/NNNN_name.sql`` files run in order; each runs in its own
transaction together with its row in ``schema_migrations``, so a crash
leaves either all of a migration or none of it. A migration that reshapes
data SQL cannot (packing event blocks) has a Python step, run in the same
transaction right after its SQL. Applying is idempotent and
safe when several nodes start at once (Postgres: an advisory lock).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from eventstore.database import Connection, Database

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
# Arbitrary constant: every collab node agrees on it.
_MIGRATION_LOCK = 0x636F6C6C6162
_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""
_APPLIED = "SELECT version FROM schema_migrations"
_HEADS = "SELECT doc_id, seq FROM doc_heads ORDER BY doc_id"
_RECORD = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file split into statements (our files keep ';' at line ends only)."""
        parts = re.split(r";\s*(?:\n|$)", self.sql)
        return [p.strip() for p in parts if _without_comments(p).strip()]


def _without_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def load_migrations(engine: str) -> list[Migration]:
    """Every migration shipped for ``engine`` ("postgres" or "sqlite"), in order."""
    folder = resources.files("eventstore") / "schema" / engine
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def apply_migrations(db: Database) -> list[int]:
    """Apply every migration not yet recorded.

    Returns:
        The versions applied by this call (empty when already up to date).
    """
    applied: list[int] = []
    async with db.transaction() as conn:
        await _lock(db, conn)
        await conn.execute(_CREATE_TABLE)
        done = {row["version"] for row in await conn.fetch(_APPLIED)}
        for migration in load_migrations(db.dialect.name):
            if migration.version in done:
                continue
            for statement in migration.statements():
                await conn.execute(statement)
            step = _STEPS.get(migration.version)
            if step is not None:
                await step(conn)
            await conn.execute(_RECORD, migration.version, migration.name, time.time())
            applied.append(migration.version)
            logger.info("applied migration %04d_%s", migration.version, migration.name)
    return applied


async def _lock(db: Database, conn: Connection) -> None:
    # SQLite's BEGIN IMMEDIATE already excludes other writers.
    if db.dialect.name == "postgres":
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)


async def _pack_existing_logs(conn: Connection) -> None:
    """0006: pack every log's whole blocks of events into ``doc_event_blocks``."""
    from eventstore.eventlog import pack_log  # the log's own packing, not a copy of it

    for row in await conn.fetch(_HEADS):
        packed = await pack_log(conn, row["doc_id"], row["seq"], delete_packed=True)
        if packed:
            logger.info("packed %d events of %s into blocks", packed, row["doc_id"])


_STEPS: dict[int, Callable[[Connection], Awaitable[None]]] = {6: _pack_existing_logs}
