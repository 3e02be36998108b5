"""``collab replay``: rebuild a document from its event log, or verify the log."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventstore.crdt import encode_state, text_of
from eventstore.errors import EventStoreError
from eventstore.eventlog import EventLog
from eventstore.factory import open_database
from eventstore.replay import rebuild
from eventstore.verify import verify_log

_PROGRESS_FROM = 5000  # events; shorter logs replay too fast to need a bar


def run_replay(database_url: str, args: argparse.Namespace) -> int:
    """Run the command; returns the process exit code."""
    try:
        return asyncio.run(_replay(database_url, args))
    except EventStoreError as exc:
        print(f"collab replay: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"collab replay: {exc}", file=sys.stderr)
        return 2


async def _replay(database_url: str, args: argparse.Namespace) -> int:
    async with open_database(database_url) as db:
        log = EventLog(db)
        if args.verify:
            return await _verify(log, args.doc_id)
        at = args.at
        if args.until is not None:
            at = await log.seq_at_time(args.doc_id, _parse_time(args.until))
        rebuilt = await rebuild(log, args.doc_id, at=at)
    _write(args, rebuilt.seq, rebuilt.doc, rebuilt.events_read, rebuilt.snapshot_seq)
    return 0


async def _verify(log: EventLog, doc_id: str) -> int:
    result = await verify_log(log, doc_id, progress=_progress_bar())
    if result.events >= _PROGRESS_FROM and sys.stderr.isatty():
        print(file=sys.stderr)  # end the bar's line
    for problem in result.problems:
        print(f"FAIL {problem}")
    verdict = "OK" if result.ok else "FAILED"
    print(f"{verdict}: {result.events} events, {result.snapshots_checked} snapshots checked")
    return 0 if result.ok else 1


def _progress_bar() -> Callable[[int, int], None]:
    """A progress reporter; it is called after each batch of events (about a hundred)."""
    shown = 0
    # Asked once: isatty is a system call, and the reporter runs thousands of times.
    on_terminal = sys.stderr.isatty()

    def report(seq: int, total: int) -> None:
        nonlocal shown
        if total < _PROGRESS_FROM:
            return
        if not on_terminal:
            # Logs and pipes get a plain line every tenth, never carriage-return frames.
            step = max(total // 10, 1)
            if seq // step > shown // step or seq == total:
                print(f"replaying: {seq}/{total} events", file=sys.stderr, flush=True)
            shown = seq
            return
        if seq // 1000 == shown // 1000 and seq != total:
            return
        shown = seq
        done = int(40 * seq / total)
        sys.stderr.write(f"\rreplaying [{'#' * done}{'.' * (40 - done)}] {seq}/{total}")
        sys.stderr.flush()

    return report


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--until must be an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError("--until needs a time zone, e.g. 2025-01-31T09:30:00Z")
    return moment.timestamp()


def _write(args: argparse.Namespace, seq: int, doc: Any, events: int, snapshot_seq: int) -> None:
    if args.format == "yjs":
        data = encode_state(doc)
    elif args.format == "json":
        body = {
            "doc_id": args.doc_id,
            "seq": seq,
            "text": text_of(doc),
            "snapshot_seq": snapshot_seq,
            "events_replayed": events,
        }
        data = (json.dumps(body, ensure_ascii=False) + "\n").encode()
    else:
        data = text_of(doc).encode()
    if args.out:
        with open(args.out, "wb") as handle:
            handle.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
