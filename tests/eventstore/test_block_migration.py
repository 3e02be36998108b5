"""Migration 0006 packs logs written one row per event into blocks, losing nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from eventstore import migrations, open_database
from eventstore.blocks import BLOCK_EVENTS
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, StoredEvent, chain_hash
from eventstore.logs import GENESIS_HASH, create_log
from eventstore.portable import first_bad_seq
from tests.eventstore.test_eventlog import typed

_OLD_INSERT = """
INSERT INTO doc_events
    (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"""
_OLD_HEAD = "UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1"
_OLD_ROWS = """
SELECT doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source
FROM doc_events WHERE doc_id = $1 ORDER BY seq"""
LONG = 2 * BLOCK_EVENTS + 88


def old_log(doc_id: str, count: int) -> list[StoredEvent]:
    """Events as the one-row-per-event log stored them: imported (dated) ones, meta, sources."""
    rng = random.Random(count)
    previous = GENESIS_HASH
    stored = []
    for seq, update in enumerate(typed("xy" * count)[:count], start=1):
        imported = seq <= count // 3
        event = NewEvent(
            "import" if imported and seq % 7 == 0 else rng.choice(["update", "edit"]),
            update,
            rng.choice([None, "u1", "u2"]),
            rng.choice(["node-a", "node-b"]),
            {"note": "ü", "n": seq} if seq % 5 == 0 else None,
            "ai:x" if seq % 3 == 0 else None,
        )
        # Imported events keep their own (older, not always rising) times.
        created_at = 1_600_000_000.0 + rng.random() * 1000 if imported else 1_700_000_000.5 + seq
        previous = chain_hash(previous, doc_id, seq, event, created_at)
        stored.append(
            StoredEvent(
                doc_id,
                seq,
                event.kind,
                event.update,
                event.author_id,
                event.node_id,
                created_at,
                event.meta,
                previous,
                event.source,
            )
        )
    return stored


def replay_verify(url: str, doc_id: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "collab", "replay", doc_id, "--verify"],
        env={"COLLAB_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
        check=False,
    )


async def test_0006_packs_old_logs_and_every_event_survives(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = migrations.load_migrations
    logs = {"long": old_log("long", LONG), "short": old_log("short", 10)}
    async with open_database(database_url) as db:
        monkeypatch.setattr(migrations, "load_migrations", lambda engine: everything(engine)[:5])
        assert await migrations.apply_migrations(db) == [1, 2, 3, 4, 5]
        async with db.transaction() as conn:
            for doc_id, stored in logs.items():
                await create_log(conn, doc_id)
                for e in stored:
                    meta = None if e.meta is None else json.dumps(e.meta)
                    await conn.execute(
                        _OLD_INSERT,
                        *(doc_id, e.seq, e.kind, e.update, e.author_id, e.node_id),
                        *(e.created_at, meta, e.hash, e.source),
                    )
                await conn.execute(_OLD_HEAD, doc_id, stored[-1].seq, stored[-1].hash)
        # Before: the old rows follow the chain (what verify checked on this schema).
        for doc_id, stored in logs.items():
            rows = await db.fetch(_OLD_ROWS, doc_id)
            assert [row["hash"] for row in rows] == [e.hash for e in stored]
            assert first_bad_seq(stored) is None
        monkeypatch.setattr(migrations, "load_migrations", everything)
        assert await migrations.apply_migrations(db) == [6, 7]
        assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 2
        assert await db.fetchval("SELECT count(*) FROM doc_events") == 88 + 10
        log = EventLog(db)
        for doc_id, stored in logs.items():
            assert await log.read(doc_id) == stored
            assert await log.seq_at_time(doc_id, 1_650_000_000.0) == len(stored) // 3
        # The log keeps growing after the migration, and packs as usual.
        more = await log.append(
            "long", [NewEvent("update", u, "u1", "n") for u in typed("z" * 200)]
        )
        assert more[0].seq == LONG + 1
        assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 3
    for doc_id in logs:
        checked = replay_verify(database_url, doc_id)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.startswith(b"OK")
