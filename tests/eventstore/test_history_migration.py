"""Migration 0004 on a log written before it, and hashes of events without a source."""

from __future__ import annotations

import hashlib
import json

import pytest

from eventstore import migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, chain_hash
from eventstore.logs import create_log
from eventstore.verify import verify_log
from tests.eventstore.test_eventlog import typed

_OLD_INSERT = """
INSERT INTO doc_events (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"""
_OLD_HEAD = "UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1"


def old_hash(previous: bytes, doc_id: str, seq: int, event: NewEvent, created_at: float) -> bytes:
    """The hash as it was computed before events had a source."""
    header = json.dumps(
        [doc_id, seq, event.kind, event.author_id, event.node_id, created_at, event.meta],
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    digest = hashlib.sha256(previous)
    digest.update(len(header).to_bytes(4, "big"))
    digest.update(header)
    digest.update(event.update)
    return digest.digest()


def test_events_without_a_source_keep_their_old_hash() -> None:
    event = NewEvent("update", b"\x01\x02", "u", "n", {"a": 1})
    assert chain_hash(b"p" * 32, "d", 3, event, 12.5) == old_hash(b"p" * 32, "d", 3, event, 12.5)
    labelled = NewEvent("update", b"\x01\x02", "u", "n", {"a": 1}, "ai:x")
    assert chain_hash(b"p" * 32, "d", 3, labelled, 12.5) != old_hash(
        b"p" * 32, "d", 3, labelled, 12.5
    )


async def test_a_log_written_before_0004_survives_it_and_still_verifies(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = migrations.load_migrations
    async with open_database(database_url) as db:
        monkeypatch.setattr(migrations, "load_migrations", lambda engine: everything(engine)[:3])
        assert await migrations.apply_migrations(db) == [1, 2, 3]
        async with db.transaction() as conn:
            await create_log(conn, "old")
            previous = bytes(32)
            for seq, update in enumerate(typed("old"), start=1):
                event = NewEvent("update", update, "u", "n")
                previous = old_hash(previous, "old", seq, event, 100.0 + seq)
                await conn.execute(
                    _OLD_INSERT, "old", seq, "update", update, "u", "n", 100.0 + seq, None, previous
                )
            await conn.execute(_OLD_HEAD, "old", 3, previous)
        monkeypatch.setattr(migrations, "load_migrations", everything)
        assert 4 in await migrations.apply_migrations(db)
        log = EventLog(db)
        assert [e.source for e in await log.read("old")] == [None, None, None]
        await log.append("old", [NewEvent("rollback", b"\x00\x00", "u", "n", None, "ai:x")])
        result = await verify_log(log, "old")
        assert result.ok, result.problems
        assert result.events == 4
