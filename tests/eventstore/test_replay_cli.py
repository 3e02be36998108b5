"""``collab replay`` as a user runs it: a subprocess against a database file."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from eventstore import open_database
from eventstore.eventlog import EventLog
from eventstore.logs import create_log
from eventstore.migrations import apply_migrations
from tests.eventstore.tampering import tamper
from tests.eventstore.test_eventlog import events, typed


async def make_log(url: str, text: str) -> None:
    async with open_database(url) as db:
        await apply_migrations(db)
        async with db.transaction() as conn:
            await create_log(conn, "doc")
        log = EventLog(db)
        await log.append("doc", events(typed(text)))


def replay(url: str, *args: str, doc: str = "doc") -> subprocess.CompletedProcess[bytes]:
    env = {"COLLAB_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "collab", "replay", doc, *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


async def test_formats_and_time_travel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    await make_log(url, "hello")
    assert replay(url).stdout == b"hello"
    assert replay(url, "--at", "2").stdout == b"he"
    body = json.loads(replay(url, "--format", "json").stdout)
    assert body["seq"] == 5
    assert body["text"] == "hello"
    out = tmp_path / "state.bin"
    assert replay(url, "--format", "yjs", "--out", str(out)).returncode == 0
    doc: Doc[Any] = Doc()
    doc.apply_update(out.read_bytes())
    assert str(doc.get("content", type=Text)) == "hello"
    future = datetime.now(UTC).isoformat()
    assert replay(url, "--until", future).stdout == b"hello"
    assert replay(url, "--until", "2000-01-01T00:00:00Z").stdout == b""


async def test_verify_passes_then_fails_after_tampering(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    await make_log(url, "hello")
    ok = replay(url, "--verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"OK: 5 events" in ok.stdout
    async with open_database(url) as db:
        await tamper(db, "doc", 2, "payload", typed("z")[0])
    bad = replay(url, "--verify")
    assert bad.returncode == 1
    assert b"event 2: hash does not follow" in bad.stdout


async def test_errors_are_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    await make_log(url, "x")
    missing = replay(url, doc="nope")
    assert missing.returncode == 1
    assert b"no event log" in missing.stderr
    assert b"Traceback" not in missing.stderr
    bad_time = replay(url, "--until", "yesterday")
    assert bad_time.returncode == 2
    assert b"ISO 8601" in bad_time.stderr
