"""The append-only per-document event log and its snapshots.

Appends lock the document's head row (``SELECT … FOR UPDATE`` on Postgres;
SQLite has one writer), so ``seq`` is gap-free and unique per document even
when several nodes append at once, and each event's hash chains onto the one
before it. Snapshots are an optimisation only: a document loads from its
newest snapshot plus the events after it; old snapshots are thinned out
as new ones are saved (:mod:`eventstore.retention`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from eventstore.database import Connection, Database, Row
from eventstore.dialect import POSTGRES
from eventstore.errors import SeqConflictError, UnknownLogError
from eventstore.events import NewEvent, StoredEvent, chain_hash
from eventstore.retention import snapshots_to_drop

_HEAD = "SELECT seq, hash FROM doc_heads WHERE doc_id = $1"
# Heads of many documents in one query: a fixed list of parameters, padded
# with NULL (which matches nothing), spells the same on both engines and stays
# well under their parameter limits (32,766 on SQLite >= 3.32, 32,767 on Postgres).
HEADS_PER_QUERY = 1000
_HEADS = "SELECT doc_id, seq FROM doc_heads WHERE doc_id IN ({})".format(  # noqa: S608
    ", ".join(f"${n}" for n in range(1, HEADS_PER_QUERY + 1))
)
_INSERT_EVENT = """
INSERT INTO doc_events
    (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"""
_MOVE_HEAD = "UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1"
# The append fast path: move the head only if it is still where this log last
# left it, so the events chained onto that head are right; otherwise nothing.
_MOVE_KNOWN_HEAD = """
UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1 AND seq = $4 AND hash = $5"""
# Postgres does the same and the inserts in one statement (one round trip, its
# own transaction): the inserts join the moved head, so a stale head inserts nothing.
_APPEND_AT_KNOWN_HEAD = """
WITH head AS (
    UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1 AND seq = $4 AND hash = $5
    RETURNING doc_id
), inserted AS (
    INSERT INTO doc_events
        (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source)
    SELECT head.doc_id, e.seq, e.kind, e.payload, e.author_id, e.node_id, $6, e.meta, e.hash,
        e.source
    FROM head, unnest(
        $7::bigint[], $8::text[], $9::bytea[], $10::text[], $11::text[], $12::text[], $13::bytea[],
        $14::text[]
    ) AS e (seq, kind, payload, author_id, node_id, meta, hash, source)
    RETURNING 1
)
SELECT count(*) FROM inserted"""
_COLUMNS = "doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source"
_READ_PAGE = f"""
SELECT {_COLUMNS} FROM doc_events
WHERE doc_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"""  # noqa: S608
_READ_ONE = f"SELECT {_COLUMNS} FROM doc_events WHERE doc_id = $1 AND seq = $2"  # noqa: S608
_SEQ_AT_TIME = "SELECT coalesce(max(seq), 0) FROM doc_events WHERE doc_id = $1 AND created_at <= $2"
_LATEST_SNAPSHOT = """
SELECT seq, state FROM doc_snapshots WHERE doc_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1"""
_SAVE_SNAPSHOT = """
INSERT INTO doc_snapshots (doc_id, seq, state, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (doc_id, seq) DO NOTHING"""
_LIST_SNAPSHOTS = "SELECT seq, state FROM doc_snapshots WHERE doc_id = $1 ORDER BY seq"
_SNAPSHOT_SEQS = "SELECT seq FROM doc_snapshots WHERE doc_id = $1 ORDER BY seq"
_SNAPSHOT_AT = "SELECT seq, state FROM doc_snapshots WHERE doc_id = $1 AND seq = $2"
_DROP_SNAPSHOT = "DELETE FROM doc_snapshots WHERE doc_id = $1 AND seq = $2"
_NO_LIMIT = 2**62
# Heads remembered for the append fast path; past this many the oldest go.
_KNOWN_HEADS = 4096


@runtime_checkable
class GuardedBatch(Protocol):
    """A database that runs a guarded batch as one call (SQLite: one thread hop)."""

    async def execute_guarded(
        self, guard: str, guard_args: tuple[Any, ...], sql: str, rows: list[tuple[Any, ...]]
    ) -> bool:
        """In one transaction: run ``guard``; if it touched a row, ``sql`` once per row.

        Returns:
            False (and nothing changed) when the guard touched no row.
        """
        ...


@dataclass(frozen=True, slots=True)
class Head:
    """The newest event of a log (seq 0 and the genesis hash when empty)."""

    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The encoded document state right after event ``seq``."""

    seq: int
    state: bytes


def _event(row: Row) -> StoredEvent:
    meta = row["meta"]
    return StoredEvent(
        doc_id=row["doc_id"],
        seq=row["seq"],
        kind=row["kind"],
        update=bytes(row["payload"]),
        author_id=row["author_id"],
        node_id=row["node_id"],
        created_at=row["created_at"],
        meta=None if meta is None else json.loads(meta),
        hash=bytes(row["hash"]),
        source=row["source"],
    )


class EventLog:
    """Reads and appends of document logs over a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # The head each log had after this object's last append to it: appends
        # chain onto it without reading the head first (see _append_fast).
        self._heads: dict[str, Head] = {}

    async def append(
        self,
        doc_id: str,
        events: Sequence[NewEvent],
        *,
        expected_head: int | None = None,
        conn: Connection | None = None,
    ) -> list[StoredEvent]:
        """Commit ``events`` in one transaction, after the current head.

        Args:
            doc_id: the document.
            events: what to append, in order.
            expected_head: when given, append only if the head is still this seq.
            conn: run inside this (caller's) transaction instead of a new one.

        Returns:
            The stored events with their seq, time and hash.

        Raises:
            UnknownLogError: the document has no log.
            SeqConflictError: the head is not ``expected_head``.
        """
        if conn is not None:
            # The caller's transaction may still roll back: forget the head.
            self._heads.pop(doc_id, None)
            return await self._append(conn, doc_id, events, expected_head)
        stored = await self._append_fast(doc_id, events, expected_head)
        if stored is None:
            async with self._db.transaction() as own:
                stored = await self._append(own, doc_id, events, expected_head)
            if stored:
                self._remember(doc_id, stored[-1])
        return stored

    async def _append_fast(
        self, doc_id: str, events: Sequence[NewEvent], expected_head: int | None
    ) -> list[StoredEvent] | None:
        """Append after the remembered head in one call, or return None.

        None means "use the locking path": no head is remembered, the head
        moved since (another node or process appended), or the backend has no
        one-call form. The guard in the SQL makes a stale head change nothing.
        """
        head = self._heads.get(doc_id)
        if head is None or not events or expected_head not in (None, head.seq):
            return None
        stored = _chain(doc_id, head, events, time.time())
        last = stored[-1]
        guard_args = (doc_id, last.seq, last.hash, head.seq, head.hash)
        if self._db.dialect is POSTGRES:
            inserted = await self._db.fetchval(
                _APPEND_AT_KNOWN_HEAD, *guard_args, last.created_at, *_columns(stored)
            )
            done = inserted == len(stored)
        elif isinstance(self._db, GuardedBatch):
            rows = [_row(e) for e in stored]
            done = await self._db.execute_guarded(_MOVE_KNOWN_HEAD, guard_args, _INSERT_EVENT, rows)
        else:
            return None
        if not done:
            self._heads.pop(doc_id, None)
            return None
        self._remember(doc_id, last)
        return stored

    def _remember(self, doc_id: str, last: StoredEvent) -> None:
        self._heads.pop(doc_id, None)
        if len(self._heads) >= _KNOWN_HEADS:
            del self._heads[next(iter(self._heads))]
        self._heads[doc_id] = Head(last.seq, last.hash)

    async def _append(
        self,
        conn: Connection,
        doc_id: str,
        events: Sequence[NewEvent],
        expected_head: int | None,
    ) -> list[StoredEvent]:
        head = await self._locked_head(conn, doc_id)
        if expected_head is not None and head.seq != expected_head:
            raise SeqConflictError(doc_id, expected_head, head.seq)
        stored = _chain(doc_id, head, events, time.time())
        await conn.executemany(_INSERT_EVENT, [_row(e) for e in stored])
        if stored:
            await conn.execute(_MOVE_HEAD, doc_id, stored[-1].seq, stored[-1].hash)
        return stored

    async def append_dated(
        self, conn: Connection, doc_id: str, events: Sequence[tuple[NewEvent, float]]
    ) -> list[StoredEvent]:
        """Append events that keep their own commit times (an imported history).

        Runs in the caller's transaction; the hashes chain onto the current head
        as for any append.

        Raises:
            UnknownLogError: the document has no log.
        """
        head = await self._locked_head(conn, doc_id)
        stored: list[StoredEvent] = []
        for event, created_at in events:
            previous = Head(stored[-1].seq, stored[-1].hash) if stored else head
            stored += _chain(doc_id, previous, [event], created_at)
        await conn.executemany(_INSERT_EVENT, [_row(e) for e in stored])
        if stored:
            await conn.execute(_MOVE_HEAD, doc_id, stored[-1].seq, stored[-1].hash)
        return stored

    async def _locked_head(self, conn: Connection, doc_id: str) -> Head:
        row = await conn.fetchrow(_HEAD + self._db.dialect.for_update, doc_id)
        if row is None:
            raise UnknownLogError(doc_id)
        return Head(row["seq"], bytes(row["hash"]))

    async def head(self, doc_id: str) -> Head:
        """The newest seq and hash.

        Raises:
            UnknownLogError: the document has no log.
        """
        row = await self._db.fetchrow(_HEAD, doc_id)
        if row is None:
            raise UnknownLogError(doc_id)
        return Head(row["seq"], bytes(row["hash"]))

    async def head_seqs(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """The head seq of each document, one query per ``HEADS_PER_QUERY`` ids.

        Documents without a log are absent from the result.
        """
        heads: dict[str, int] = {}
        for start in range(0, len(doc_ids), HEADS_PER_QUERY):
            chunk: list[str | None] = list(doc_ids[start : start + HEADS_PER_QUERY])
            chunk += [None] * (HEADS_PER_QUERY - len(chunk))
            for row in await self._db.fetch(_HEADS, *chunk):
                heads[row["doc_id"]] = row["seq"]
        return heads

    async def read(
        self, doc_id: str, *, after: int = 0, through: int | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events with ``after < seq <= through``, oldest first, at most ``limit``."""
        rows = await self._db.fetch(
            _READ_PAGE,
            doc_id,
            after,
            _NO_LIMIT if through is None else through,
            _NO_LIMIT if limit is None else limit,
        )
        return [_event(row) for row in rows]

    async def iterate(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 2000
    ) -> AsyncIterator[StoredEvent]:
        """Like :meth:`read`, in pages, for logs too long to hold at once."""
        async for batch in self.pages(doc_id, after=after, through=through, page=page):
            for event in batch:
                yield event

    async def pages(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 2000
    ) -> AsyncIterator[list[StoredEvent]]:
        """Events with ``after < seq <= through`` in pages of ``page``, oldest first.

        The next page is read while the caller works on the current one.
        """
        upcoming = asyncio.ensure_future(
            self.read(doc_id, after=after, through=through, limit=page)
        )
        try:
            while True:
                batch = await upcoming
                if len(batch) == page:
                    upcoming = asyncio.ensure_future(
                        self.read(doc_id, after=batch[-1].seq, through=through, limit=page)
                    )
                if batch:
                    yield batch
                if len(batch) < page:
                    return
        finally:
            upcoming.cancel()

    async def event(self, doc_id: str, seq: int) -> StoredEvent | None:
        """One event, if it exists."""
        row = await self._db.fetchrow(_READ_ONE, doc_id, seq)
        return None if row is None else _event(row)

    async def seq_at_time(self, doc_id: str, until: float) -> int:
        """The newest seq committed at or before ``until`` (0 if none)."""
        seq: int = await self._db.fetchval(_SEQ_AT_TIME, doc_id, until)
        return seq

    async def latest_snapshot(self, doc_id: str, *, at_most: int | None = None) -> Snapshot | None:
        """The newest snapshot at or before ``at_most`` (any, when None)."""
        row = await self._db.fetchrow(
            _LATEST_SNAPSHOT, doc_id, _NO_LIMIT if at_most is None else at_most
        )
        return None if row is None else Snapshot(row["seq"], bytes(row["state"]))

    async def snapshots(self, doc_id: str) -> list[Snapshot]:
        """Every snapshot of the document, oldest first (all states in memory at once)."""
        rows = await self._db.fetch(_LIST_SNAPSHOTS, doc_id)
        return [Snapshot(row["seq"], bytes(row["state"])) for row in rows]

    async def snapshot_seqs(self, doc_id: str) -> list[int]:
        """The seqs of the document's snapshots, oldest first (no states read)."""
        return [row["seq"] for row in await self._db.fetch(_SNAPSHOT_SEQS, doc_id)]

    async def snapshot_at(self, doc_id: str, seq: int) -> Snapshot | None:
        """The snapshot taken right after ``seq``, if one is kept."""
        row = await self._db.fetchrow(_SNAPSHOT_AT, doc_id, seq)
        return None if row is None else Snapshot(row["seq"], bytes(row["state"]))

    async def save_snapshot(self, doc_id: str, seq: int, state: bytes) -> None:
        """Keep ``state`` as the document right after ``seq`` (idempotent).

        Older snapshots are then thinned out (see :mod:`eventstore.retention`):
        the newest few stay, older ones are kept ever more sparsely, so their
        total size grows with the logarithm of the history, not with it.
        """
        await self._db.execute(_SAVE_SNAPSHOT, doc_id, seq, state, time.time())
        await self.prune_snapshots(doc_id)

    async def prune_snapshots(self, doc_id: str) -> list[int]:
        """Drop the snapshots the retention policy no longer keeps; return their seqs."""
        drop = snapshots_to_drop(await self.snapshot_seqs(doc_id))
        if drop:
            await self._db.executemany(_DROP_SNAPSHOT, [(doc_id, seq) for seq in drop])
        return drop


def _chain(doc_id: str, head: Head, events: Sequence[NewEvent], now: float) -> list[StoredEvent]:
    stored = []
    previous, seq = head.hash, head.seq
    for event in events:
        seq += 1
        previous = chain_hash(previous, doc_id, seq, event, now)
        stored.append(
            StoredEvent(
                doc_id,
                seq,
                event.kind,
                event.update,
                event.author_id,
                event.node_id,
                now,
                event.meta,
                previous,
                event.source,
            )
        )
    return stored


def _row(event: StoredEvent) -> tuple[Any, ...]:
    meta = None if event.meta is None else json.dumps(event.meta, separators=(",", ":"))
    return (
        event.doc_id,
        event.seq,
        event.kind,
        event.update,
        event.author_id,
        event.node_id,
        event.created_at,
        meta,
        event.hash,
        event.source,
    )


def _columns(events: list[StoredEvent]) -> list[list[Any]]:
    """The per-event columns of :data:`_APPEND_AT_KNOWN_HEAD`, one array each."""
    rows = [_row(e) for e in events]
    # _row order: doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source
    return [[row[i] for row in rows] for i in (1, 2, 3, 4, 5, 7, 8, 9)]
