"""Does a database hold an event log? Asked by the commands that only read one.

Opening a SQLite URL creates the file, and a command that only reads (such
as ``collab replay``) run in the wrong directory would then leave an empty
database behind and fail on a missing table. These checks open nothing
for writing and create nothing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventstore import open_database
from eventstore.factory import sqlite_path

_SQLITE_HAS_LOG = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'doc_heads'"
_HAS_LOG = "SELECT 1 FROM doc_heads LIMIT 1"


async def missing_log_reason(database_url: str) -> str | None:
    """Why ``database_url`` has no event log to read, or None when it has one."""
    if database_url.startswith("sqlite"):
        return _sqlite_reason(sqlite_path(database_url))
    try:
        async with open_database(database_url) as db:
            await db.fetchval(_HAS_LOG)
    except Exception as exc:  # unreachable, or no such table: both mean "not here"
        return f"cannot read an event log from the database ({type(exc).__name__})"
    return None


def _sqlite_reason(path: str) -> str | None:
    if path == ":memory:" or not Path(path).is_file():
        return f"no database at {path}"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute(_SQLITE_HAS_LOG).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"{path} is not a readable SQLite database ({exc})"
    return None if found else f"{path} has no collab schema"
