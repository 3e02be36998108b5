"""``collab export`` / ``collab import`` as a user runs them, on both engines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from auth.access import Role
from auth.signing_key import load_signing_key
from auth.tokens import TokenSigner
from eventstore import Database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.replay import document_text
from eventstore.verify import verify_log
from tests.conftest import TEST_SECRET
from tests.eventstore.test_eventlog import typed
from tests.realtime.seed import Seeded, seed_database


def collab(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"COLLAB_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "collab", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def history(db: Database, tmp_path: Path) -> Seeded:
    signer = TokenSigner(load_signing_key(TEST_SECRET, tmp_path), access_ttl=60, refresh_ttl=60)
    seeded = await seed_database(db, signer, {"owner": Role.OWNER, "editor": Role.EDITOR})
    updates = typed("héllo 😀")
    authors = [seeded.users["owner"].id, seeded.users["editor"].id]
    await EventLog(db).append(
        seeded.doc_id,
        [
            NewEvent("update", u, authors[i % 2], "node", source="ai:bot" if i == 3 else None)
            for i, u in enumerate(updates)
        ],
    )
    return seeded


async def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(collab, url, *args)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


async def test_export_then_import_keeps_the_history(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    seeded = await history(db, tmp_path)
    out = tmp_path / "doc.json"
    exported = await run(database_url, "export", seeded.doc_id, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    body = json.loads(out.read_text())
    assert body["document"]["name"] == "main.py"
    assert {a["display_name"] for a in body["authors"]} == {"Owner", "Editor"}
    assert len(body["events"]) == 7
    imported = await run(database_url, "import", str(out), "--project", seeded.project_id)
    assert imported.returncode == 0, imported.stderr
    new_id = imported.stdout.strip()
    log = EventLog(db)
    before, after = await log.read(seeded.doc_id), await log.read(new_id)
    assert [(e.seq, e.kind, e.author_id, e.source, e.created_at, e.update) for e in after] == [
        (e.seq, e.kind, e.author_id, e.source, e.created_at, e.update) for e in before
    ]
    assert (await verify_log(log, new_id)).ok
    assert await document_text(db, new_id) == (7, "héllo 😀")


async def test_a_tampered_file_is_refused_naming_the_first_bad_seq(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    seeded = await history(db, tmp_path)
    out = tmp_path / "doc.json"
    assert (await run(database_url, "export", seeded.doc_id, "--out", str(out))).returncode == 0
    body = json.loads(out.read_text())
    body["events"][3]["source"] = None  # seq 4 claimed to be human after all
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(body))
    refused = await run(database_url, "import", str(tampered), "--project", seeded.project_id)
    assert refused.returncode == 1
    assert "event 4" in one_line(refused.stderr)
    body["events"][3]["source"] = "ai:bot"
    del body["events"][1]
    tampered.write_text(json.dumps(body))
    dropped = await run(database_url, "import", str(tampered), "--project", seeded.project_id)
    assert dropped.returncode == 1 and "event 2" in one_line(dropped.stderr)
    assert await db.fetchval("SELECT count(*) FROM documents") == 1


async def test_bad_input_fails_with_one_line(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    seeded = await history(db, tmp_path)
    out = tmp_path / "doc.json"
    unknown = await run(database_url, "export", "nope", "--out", str(out))
    assert unknown.returncode == 1 and "no document" in one_line(unknown.stderr)
    garbage = tmp_path / "garbage.json"
    for content in ("not json", "[]", '{"format": "collab-document-log", "version": 9}'):
        garbage.write_text(content)
        bad = await run(database_url, "import", str(garbage), "--project", seeded.project_id)
        assert bad.returncode == 1
        one_line(bad.stderr)
    assert (await run(database_url, "export", seeded.doc_id, "--out", str(out))).returncode == 0
    body = json.loads(out.read_text())
    body["events"][0]["update"] = "!!not base64!!"
    garbage.write_text(json.dumps(body))
    bad = await run(database_url, "import", str(garbage), "--project", seeded.project_id)
    assert bad.returncode == 1 and "malformed" in one_line(bad.stderr)
    missing = await run(database_url, "import", str(out), "--project", "no-such-project")
    assert missing.returncode == 1 and "no project" in one_line(missing.stderr)
    absent = await run(database_url, "import", str(tmp_path / "absent.json"), "--project", "x")
    assert absent.returncode == 1
    one_line(absent.stderr)
