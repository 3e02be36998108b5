"""Creating and deleting a document's event log.

The log's head row is created in the same transaction as the document's
metadata, and deleted with it; events and snapshots cascade from the head.
"""

from __future__ import annotations

from eventstore.database import Connection

GENESIS_HASH = bytes(32)
_CREATE_HEAD = "INSERT INTO doc_heads (doc_id, seq, hash) VALUES ($1, 0, $2)"
_DELETE_HEAD = "DELETE FROM doc_heads WHERE doc_id = $1"


async def create_log(conn: Connection, doc_id: str) -> None:
    """Start an empty log (head seq 0) for a new document."""
    await conn.execute(_CREATE_HEAD, doc_id, GENESIS_HASH)


async def delete_logs(conn: Connection, doc_ids: list[str]) -> None:
    """Remove the logs of these documents, with their events and snapshots."""
    for doc_id in doc_ids:
        await conn.execute(_DELETE_HEAD, doc_id)
