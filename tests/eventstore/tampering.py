"""Changing a stored event behind the log's back, wherever it is kept."""

from __future__ import annotations

from typing import Any

from eventstore import Database
from eventstore.blocks import block_start, decode_body, encode_body

_TAIL_COLUMNS = {"payload", "author_id", "node_id"}
_FIELD = {"payload": 1, "author_id": 2, "node_id": 3}
_BLOCK = "SELECT body FROM doc_event_blocks WHERE doc_id = $1 AND first_seq = $2"
_REWRITE = "UPDATE doc_event_blocks SET body = $3 WHERE doc_id = $1 AND first_seq = $2"


async def tamper(db: Database, doc_id: str, seq: int, column: str, value: Any) -> None:
    """Set one stored field of event ``seq`` (a tail row or inside its block), keeping its hash."""
    assert column in _TAIL_COLUMNS
    changed = await db.execute(
        f"UPDATE doc_events SET {column} = $1 WHERE doc_id = $2 AND seq = $3",  # noqa: S608
        value,
        doc_id,
        seq,
    )
    if changed:
        return
    first = block_start(seq)
    body = await db.fetchval(_BLOCK, doc_id, first)
    assert body is not None, f"event {seq} is stored nowhere"
    events, prefixes = decode_body(bytes(body))
    fields = list(events[seq - first])
    fields[_FIELD[column]] = value
    events[seq - first] = tuple(fields)  # type: ignore[assignment]
    await db.execute(_REWRITE, doc_id, first, encode_body(events, prefixes))
