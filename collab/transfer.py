"""``collab export`` and ``collab import``: a document's whole history as a portable file.

Export writes the document's metadata, its authors' ids and names, and every
event with its hash. Import re-verifies the hash chain against the original
document id, refuses the file at the first seq that does not follow, and
otherwise creates a new document in the given project whose log holds the
same events (same kinds, authors, sources, times and updates), chained anew
under the new id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from eventstore import Database, open_database
from eventstore.errors import EventStoreError
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, StoredEvent
from eventstore.logs import create_log
from eventstore.portable import (
    FORMAT,
    VERSION,
    PortableFormatError,
    event_json,
    first_bad_seq,
    parse_event,
)

_DOCUMENT = "SELECT id, name, language, created_at, updated_at FROM documents WHERE id = $1"
_USER_NAME = "SELECT display_name FROM users WHERE id = $1"
_PROJECT = "SELECT id FROM projects WHERE id = $1"
_INSERT = (
    "INSERT INTO documents (id, project_id, name, language, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $5)"
)


class TransferError(Exception):
    """A failure to report on one line (unknown document or project, bad file)."""


def run_export(database_url: str, args: argparse.Namespace) -> int:
    """``collab export DOC_ID --out FILE``; returns the exit code."""
    try:
        body = asyncio.run(_export(database_url, args.doc_id))
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(body, handle, ensure_ascii=False, separators=(",", ":"))
    except (TransferError, EventStoreError, OSError) as exc:
        print(f"collab export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {len(body['events'])} events of {args.doc_id} to {args.out}")
    return 0


def run_import(database_url: str, args: argparse.Namespace) -> int:
    """``collab import FILE --project PROJECT_ID``; prints the new document's id."""
    try:
        document, events = _checked(_read_file(args.file), args.file)
        doc_id = asyncio.run(_import(database_url, args.project, document, events))
    except (TransferError, EventStoreError, OSError) as exc:
        print(f"collab import: {exc}", file=sys.stderr)
        return 1
    print(doc_id)
    return 0


async def _export(database_url: str, doc_id: str) -> dict[str, Any]:
    async with open_database(database_url) as db:
        document = await db.fetchrow(_DOCUMENT, doc_id)
        if document is None:
            raise TransferError(f"no document {doc_id}")
        events = [event async for event in EventLog(db).iterate(doc_id)]
        authors = {e.author_id for e in events} - {None}
        names = {a: await db.fetchval(_USER_NAME, a) for a in sorted(a for a in authors if a)}
    return {
        "format": FORMAT,
        "version": VERSION,
        "document": dict(document),
        "authors": [{"id": a, "display_name": n} for a, n in names.items()],
        "events": [event_json(e) for e in events],
    }


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            body = json.load(handle)
    except (ValueError, UnicodeDecodeError):
        raise TransferError(f"{path} is not a JSON export") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise TransferError(f"{path} is not a {FORMAT} file")
    if body.get("version") != VERSION:
        raise TransferError(f"unsupported export version {body.get('version')!r}")
    return body


def _checked(body: dict[str, Any], path: str) -> tuple[dict[str, Any], list[StoredEvent]]:
    """The document and its events, once the chain is verified.

    Raises:
        TransferError: malformed, or an event does not follow the chain.
    """
    document, raw_events = body.get("document"), body.get("events")
    if not isinstance(document, dict) or not isinstance(raw_events, list):
        raise TransferError(f"{path} lacks its document or events")
    try:
        original = str(document["id"])
        events = [parse_event(original, raw) for raw in raw_events]
    except (KeyError, PortableFormatError) as exc:
        raise TransferError(f"{path} is malformed: {exc}") from None
    bad = first_bad_seq(events)
    if bad is not None:
        raise TransferError(f"refused: event {bad} does not follow the hash chain")
    return document, events


async def _import(
    database_url: str, project_id: str, document: dict[str, Any], events: list[StoredEvent]
) -> str:
    async with open_database(database_url) as db:
        return await _create(db, project_id, document, events)


async def _create(
    db: Database, project_id: str, document: dict[str, Any], events: list[StoredEvent]
) -> str:
    doc_id = uuid.uuid4().hex
    dated = [
        (NewEvent(e.kind, e.update, e.author_id, e.node_id, e.meta, e.source), e.created_at)
        for e in events
    ]
    async with db.transaction() as conn:
        if await conn.fetchval(_PROJECT, project_id) is None:
            raise TransferError(f"no project {project_id}")
        name = str(document.get("name") or "imported")[:200]
        language = str(document.get("language") or "text")[:50]
        await conn.execute(_INSERT, doc_id, project_id, name, language, time.time())
        await create_log(conn, doc_id)
        await EventLog(db).append_dated(conn, doc_id, dated)
    return doc_id
