"""Migration 0006 packs logs written one row per event into blocks, losing nothing.

The second test takes the code from just before that migration out of the git
history and lets it write and verify logs itself; the current code then
migrates them and must verify them alike.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

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
REPO = Path(__file__).resolve().parents[2]
FIRST_BLOCK_MIGRATION = "eventstore/schema/postgres/0006_event_blocks.sql"


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


def git(*args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, check=True, timeout=60
    ).stdout


@pytest.fixture(scope="module")
def tree_before_blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as it was just before migration 0006, extracted from git."""
    try:
        added = git("log", "--format=%H", "--diff-filter=A", "--", FIRST_BLOCK_MIGRATION).split()
        commit = git("rev-parse", "--verify", f"{added[-1].decode()}^").decode().strip()
        archive = git("archive", commit, "collab", "eventstore", "auth", "webcore", "executor")
    except (OSError, IndexError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.fail(
            "this test runs the code from before migration 0006, taken from the git history: "
            f"it needs a full clone with git available ({detail!r})"
        )
    tree = tmp_path_factory.mktemp("before-0006")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run_python(tree: Path | None, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Python with ``tree``'s packages first on the path (None: this tree's)."""
    env = {"COLLAB_DATABASE_URL": url, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [sys.executable, *args],
        env=env if tree is None else {**env, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        timeout=120,
        check=False,
    )


def replay(tree: Path | None, url: str, doc_id: str, *flags: str) -> tuple[bytes, bytes]:
    """What ``collab replay DOC_ID FLAGS`` of ``tree`` prints; it must exit 0."""
    done = run_python(tree, url, "-m", "collab", "replay", doc_id, *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, done.stderr


@pytest.mark.timeout(300)
async def test_a_log_the_old_code_wrote_and_verified_verifies_after_the_migration(
    database_url: str, tree_before_blocks: Path
) -> None:
    writer = Path(__file__).with_name("old_log_writer.py")
    written = run_python(tree_before_blocks, database_url, str(writer), database_url, ".")
    assert written.returncode == 0, written.stderr.decode()
    docs = ("long", "short")
    # The old code's own `collab replay --verify`, and the text it rebuilds, on the old layout.
    verified = {d: replay(tree_before_blocks, database_url, d, "--verify")[0] for d in docs}
    texts = {d: replay(tree_before_blocks, database_url, d)[0] for d in docs}
    assert all(out.startswith(b"OK") for out in verified.values()), verified
    async with open_database(database_url) as db:
        assert await db.fetchval("SELECT count(*) FROM doc_events") == 610
        assert await migrations.apply_migrations(db) == [6, 7]
        assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 2
    for doc_id in docs:
        # The same events and snapshots checked, the same text.
        assert replay(None, database_url, doc_id, "--verify")[0] == verified[doc_id]
        assert replay(None, database_url, doc_id)[0] == texts[doc_id]
