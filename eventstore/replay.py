"""Rebuilding a document from its log: at the head or at any seq."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from eventstore.crdt import UpdateRejectedError, apply_update, new_doc, text_of
from eventstore.database import Database
from eventstore.eventlog import EventLog

APPLY_BATCH = 100
_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A document as of ``seq``, and how much of the log it took to build."""

    seq: int
    doc: Doc[Any]
    snapshot_seq: int
    events_read: int


async def rebuild(
    log: EventLog, doc_id: str, *, at: int | None = None, use_snapshots: bool = True
) -> Rebuilt:
    """The document right after event ``at`` (the head when None).

    Loads the newest snapshot at or before ``at`` and applies the events after
    it in order, :data:`APPLY_BATCH` per yrs transaction (faster than one
    transaction each, and than one huge transaction). Only their updates are
    read (:meth:`EventLog.updates`): past the snapshot, a time travel's cost
    is about one microsecond per event, two thirds of it in yrs.

    Raises:
        UnknownLogError: the document has no log.
        UpdateRejectedError: a stored update does not decode.
    """
    head = await log.head(doc_id)
    target = head.seq if at is None else min(at, head.seq)
    doc = new_doc()
    snapshot = await log.latest_snapshot(doc_id, at_most=target) if use_snapshots else None
    start = 0
    if snapshot is not None:
        apply_update(doc, snapshot.state)
        start = snapshot.seq
    count = 0
    async for page in log.updates(doc_id, after=start, through=target, page=_PAGE):
        for first in range(0, len(page), APPLY_BATCH):
            failures = apply_batch(doc, page[first : first + APPLY_BATCH])
            if failures:
                raise failures[0][1]
        count += len(page)
    return Rebuilt(target, doc, start, count)


def apply_batch(doc: Doc[Any], updates: Sequence[bytes]) -> list[tuple[int, UpdateRejectedError]]:
    """Apply ``updates`` in one yrs transaction; the index and error of each that failed.

    Like :func:`eventstore.crdt.apply_update` for each, but it calls yrs with
    the open transaction directly: ``Doc.apply_update`` opens (and closes) a
    nested transaction per update, which costs as much as applying a
    keystroke. Should pycrdt's internals change, it falls back to that.
    """
    failures = []
    with doc.transaction() as transaction:
        raw_doc, raw_transaction = getattr(doc, "_doc", None), getattr(transaction, "_txn", None)
        direct = raw_doc is not None and raw_transaction is not None
        for index, update in enumerate(updates):
            try:
                if direct:
                    raw_doc.apply_update(raw_transaction, update)  # type: ignore[union-attr]
                else:
                    doc.apply_update(update)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # pyo3 PanicException derives from BaseException
                panicked = not isinstance(exc, Exception)
                message = f"{type(exc).__name__}: {exc}"
                failures.append((index, UpdateRejectedError(message, panicked=panicked)))
    return failures


async def document_text(db: Database, doc_id: str, at: int | None = None) -> tuple[int, str]:
    """The seq and text of a document at its head (or right after ``at``).

    Raises:
        UnknownLogError: the document has no log.
    """
    rebuilt = await rebuild(EventLog(db), doc_id, at=at)
    return rebuilt.seq, text_of(rebuilt.doc)
