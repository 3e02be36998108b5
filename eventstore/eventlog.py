"""The append-only per-document event log and its snapshots.

Appends lock the document's head row (``SELECT … FOR UPDATE`` on Postgres;
SQLite has one writer), so ``seq`` is gap-free and unique per document even
when several nodes append at once, and each event's hash chains onto the one
before it. Events are stored compactly (:mod:`eventstore.blocks`): each run
of 256 is packed into one block by the append that completes it, and newer
ones wait in reused tail rows. Snapshots are an optimisation only: a document
loads from its newest snapshot plus the events after it; old snapshots are
thinned out as new ones are saved (:mod:`eventstore.retention`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from eventstore.blocks import (
    BLOCK_EVENTS,
    HASH_PREFIX,
    TAIL_SLOTS,
    Block,
    BlockFormatError,
    PackedBlock,
    block_start,
    decode_updates,
    encode_body,
    unpacked,
)
from eventstore.database import (
    ID_PARAMETERS,
    IDS_PER_QUERY,
    Connection,
    Database,
    Row,
    padded_chunks,
)
from eventstore.dialect import POSTGRES
from eventstore.errors import SeqConflictError, UnknownLogError
from eventstore.events import (
    EVENT_KINDS,
    ChainHasher,
    EventFields,
    EventKind,
    NewEvent,
    StoredEvent,
    canonical_meta,
    chain_hash,
)
from eventstore.logs import GENESIS_HASH
from eventstore.retention import snapshots_to_drop

_HEAD = "SELECT seq, hash FROM doc_heads WHERE doc_id = $1"
# Heads of many documents in one query (see eventstore.database.padded_chunks).
HEADS_PER_QUERY = IDS_PER_QUERY
_HEADS = f"SELECT doc_id, seq FROM doc_heads WHERE doc_id IN ({ID_PARAMETERS})"  # noqa: S608
# A tail event takes the slot of the event TAIL_SLOTS before it, which is
# packed by then (see EventLog._append_fast): rewriting a row in place leaves
# its old version on the same page, where Postgres prunes it without a vacuum.
_UPSERT_TAIL = """
ON CONFLICT (doc_id, slot) DO UPDATE SET seq = excluded.seq, kind = excluded.kind,
    payload = excluded.payload, author_id = excluded.author_id, node_id = excluded.node_id,
    created_at = excluded.created_at, meta = excluded.meta, hash = excluded.hash,
    source = excluded.source"""
_INSERT_EVENT = f"""
INSERT INTO doc_events
    (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source, slot)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11){_UPSERT_TAIL}"""  # noqa: S608
_MOVE_HEAD = "UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1"
# The append fast path: move the head only if it is still where this log last
# left it, so the events chained onto that head are right; otherwise nothing.
_MOVE_KNOWN_HEAD = """
UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1 AND seq = $4 AND hash = $5"""
# Postgres does the same and the inserts in one statement (one round trip, its
# own transaction): the inserts join the moved head, so a stale head inserts nothing.
_APPEND_AT_KNOWN_HEAD = f"""
WITH head AS (
    UPDATE doc_heads SET seq = $2, hash = $3 WHERE doc_id = $1 AND seq = $4 AND hash = $5
    RETURNING doc_id
), inserted AS (
    INSERT INTO doc_events
        (doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source, slot)
    SELECT head.doc_id, e.seq, e.kind, e.payload, e.author_id, e.node_id, $6, e.meta, e.hash,
        e.source, (e.seq - 1) % {TAIL_SLOTS}
    FROM head, unnest(
        $7::bigint[], $8::text[], $9::bytea[], $10::text[], $11::text[], $12::text[], $13::bytea[],
        $14::text[]
    ) AS e (seq, kind, payload, author_id, node_id, meta, hash, source){_UPSERT_TAIL}
    RETURNING 1
)
SELECT count(*) FROM inserted"""  # noqa: S608
# The newest packed seq; tail rows at or before it are stale slots.
_PACKED = """coalesce((SELECT last_seq FROM doc_event_blocks WHERE doc_id = $1
    ORDER BY first_seq DESC LIMIT 1), 0)"""
_PACKED_THROUGH = f"SELECT {_PACKED}"
_TAIL_COLUMNS = "seq, kind, payload, author_id, node_id, created_at, meta, hash, source"
# Blocks and tail rows of a seq range in one statement, so a concurrent pack
# (which moves tail rows into a block) cannot hide events between two reads.
_READ_RANGE = f"""
SELECT first_seq AS seq, last_seq, 1 AS packed, body AS payload, previous,
    last_hash AS hash, NULL AS kind, NULL AS author_id, NULL AS node_id,
    NULL AS created_at, NULL AS meta, NULL AS source
FROM doc_event_blocks WHERE doc_id = $1 AND first_seq <= $3 AND last_seq > $2
UNION ALL
SELECT seq, seq, 0, payload, NULL, hash, kind, author_id, node_id, created_at, meta,
    source
FROM doc_events WHERE doc_id = $1 AND seq > $2 AND seq <= $3 AND seq > {_PACKED}
ORDER BY seq"""  # noqa: S608
# The same for a replay: block bodies and tail updates only.
_READ_UPDATES = f"""
SELECT first_seq AS seq, 1 AS packed, body AS payload
FROM doc_event_blocks WHERE doc_id = $1 AND first_seq <= $3 AND last_seq > $2
UNION ALL
SELECT seq, 0, payload
FROM doc_events WHERE doc_id = $1 AND seq > $2 AND seq <= $3 AND seq > {_PACKED}
ORDER BY seq"""  # noqa: S608
_TAIL_SEQ_AT_TIME = f"""
SELECT coalesce(max(seq), 0) FROM doc_events
WHERE doc_id = $1 AND created_at <= $2 AND seq > {_PACKED}"""  # noqa: S608
_BLOCKS_SEQ_AT_TIME = """
SELECT coalesce(max(last_seq), 0) FROM doc_event_blocks WHERE doc_id = $1 AND max_at <= $2"""
_BLOCKS_STRADDLING_TIME = """
SELECT first_seq, last_seq, previous, last_hash, body FROM doc_event_blocks
WHERE doc_id = $1 AND min_at <= $2 AND max_at > $2 AND last_seq > $3 ORDER BY first_seq"""
_BLOCKS_WITH_KINDS = """
SELECT first_seq, last_seq, previous, last_hash, body FROM doc_event_blocks
WHERE doc_id = $1 AND (kinds & $2) <> 0 ORDER BY first_seq"""
_TAIL_OF_KIND = f"""
SELECT {_TAIL_COLUMNS} FROM doc_events
WHERE doc_id = $1 AND kind = $2 AND seq > {_PACKED} ORDER BY seq"""  # noqa: S608
_TAIL_TO_PACK = f"""
SELECT {_TAIL_COLUMNS} FROM doc_events
WHERE doc_id = $1 AND seq > $4 AND seq <= $2 ORDER BY seq LIMIT $3"""  # noqa: S608
_BLOCK_HASH = "SELECT last_hash FROM doc_event_blocks WHERE doc_id = $1 AND first_seq = $2"
_INSERT_BLOCK = """
INSERT INTO doc_event_blocks
    (doc_id, first_seq, last_seq, min_at, max_at, kinds, previous, last_hash, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"""
# Only migration 0006 deletes packed rows (its tail rows had no slots yet).
_DELETE_PACKED = "DELETE FROM doc_events WHERE doc_id = $1 AND seq >= $2 AND seq <= $3"
# Blocks packed per round of a pack (bounds the rows held at once).
_PACK_ROUND = 32
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
_T = TypeVar("_T")
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


class EventLog:
    """Reads and appends of document logs over a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # The head each log had after this object's last append to it: appends
        # chain onto it without reading the head first (see _append_fast).
        self._heads: dict[str, Head] = {}
        # The newest packed seq of each log in _heads, as that append left it.
        self._packed: dict[str, int] = {}

    @property
    def quick_batch(self) -> int | None:
        """The most events an append is sure to commit in its one-call path (None: any).

        On Postgres a larger batch can reach tail slots not yet packed and takes
        the locking path, with one insert per event: measured on a streamed
        trace, commits of up to a block took 16% less time than commits of a
        thousand. On SQLite both paths are one call on the event loop's thread,
        and larger groups measured faster.
        """
        return BLOCK_EVENTS if self._db.dialect is POSTGRES else None

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
            self._forget(doc_id)
            return await self._append(conn, doc_id, events, expected_head)
        stored = await self._append_fast(doc_id, events, expected_head)
        if stored is None:
            async with self._db.transaction() as own:
                stored = await self._append(own, doc_id, events, expected_head)
                packed = await _packed_through(own, doc_id)
            if stored:
                self._remember(doc_id, stored[-1], packed)
        elif _fills_block(stored):
            # The one-statement append cannot pack; the head lock taken here
            # orders this pack after the append and against any other node's.
            async with self._db.transaction() as own:
                await self._locked_head(own, doc_id)
                await pack_log(own, doc_id, stored[-1].seq)
                packed = await _packed_through(own, doc_id)
            self._remember(doc_id, stored[-1], packed)
        return stored

    async def _append_fast(
        self, doc_id: str, events: Sequence[NewEvent], expected_head: int | None
    ) -> list[StoredEvent] | None:
        """Append after the remembered head in one call, or return None.

        None means "use the locking path": no head is remembered, the head
        moved since (another node or process appended), the events would
        take tail slots whose events are not known to be packed, or the
        backend has no one-call form. The guard in the SQL makes a stale head
        change nothing.
        """
        head = self._heads.get(doc_id)
        if head is None or not events or expected_head not in (None, head.seq):
            return None
        # Packed blocks never go away, so a remembered packed seq stays true.
        if head.seq + len(events) - TAIL_SLOTS > self._packed.get(doc_id, 0):
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
            self._forget(doc_id)
            return None
        self._remember(doc_id, last, self._packed.get(doc_id, 0))
        return stored

    def _remember(self, doc_id: str, last: StoredEvent, packed: int) -> None:
        self._forget(doc_id)
        if len(self._heads) >= _KNOWN_HEADS:
            self._forget(next(iter(self._heads)))
        self._heads[doc_id] = Head(last.seq, last.hash)
        self._packed[doc_id] = packed

    def _forget(self, doc_id: str) -> None:
        self._heads.pop(doc_id, None)
        self._packed.pop(doc_id, None)

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
        await _insert_tail(conn, doc_id, head.seq, stored)
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
        self._forget(doc_id)
        head = await self._locked_head(conn, doc_id)
        stored: list[StoredEvent] = []
        for event, created_at in events:
            previous = Head(stored[-1].seq, stored[-1].hash) if stored else head
            stored += _chain(doc_id, previous, [event], created_at)
        await _insert_tail(conn, doc_id, head.seq, stored)
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
        for chunk in padded_chunks(doc_ids):
            for row in await self._db.fetch(_HEADS, *chunk):
                heads[row["doc_id"]] = row["seq"]
        return heads

    async def read(
        self, doc_id: str, *, after: int = 0, through: int | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events with ``after < seq <= through``, oldest first, at most ``limit``."""
        events: list[StoredEvent] = []
        upper = _upper(after, through, limit)
        for segment in await self._segments(doc_id, after, upper):
            hashes = _stored_hashes(doc_id, segment)
            for offset, fields in enumerate(segment.events):
                seq = segment.first_seq + offset
                if after < seq <= upper:
                    events.append(_stored(doc_id, seq, fields, hashes[offset]))
        return events

    async def segments(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[Block]]:
        """The stored log as it is kept: blocks, and each tail event as a block of one.

        Pages of about ``page`` events, oldest first, starting at the block
        holding ``after + 1`` (so a page may begin before it). Nothing is
        hashed: this is for checking the chain (``previous`` of a tail event
        is the hash stored before it) and for replaying updates quickly. The
        next page is read while the caller works on the current one.
        """
        async for batch in self.packed_segments(doc_id, after=after, through=through, page=page):
            yield [unpacked(segment) for segment in batch]

    async def packed_segments(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[Block | PackedBlock]]:
        """Like :meth:`segments`, with the packed blocks' bodies left undecoded."""
        upper = _NO_LIMIT if through is None else through

        async def read(start: int) -> tuple[int, list[Block | PackedBlock]]:
            batch = await self._packed_segments(
                doc_id, start, min(upper, start + page), tail_previous=True
            )
            return (batch[-1].last_seq if batch else start), batch

        async for batch in _read_ahead(read, after, upper):
            yield batch

    async def updates(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[bytes]]:
        """The updates of events ``after < seq <= through`` in pages, unhashed (fast).

        Reads only the block bodies and tail updates, and decodes only the
        updates column of each block (a replay needs nothing else). The next
        page is read while the caller works on the current one.
        """
        upper = _NO_LIMIT if through is None else through

        async def read(start: int) -> tuple[int, list[bytes]]:
            return await self._updates(doc_id, start, min(upper, start + page))

        async for found in _read_ahead(read, after, upper):
            yield found

    async def _updates(self, doc_id: str, after: int, through: int) -> tuple[int, list[bytes]]:
        """The newest seq read and the updates of ``after < seq <= through``."""
        rows = await self._db.fetch(_READ_UPDATES, doc_id, after, through)
        found: list[bytes] = []
        reached = after
        for row in rows:
            first = row["seq"]
            if not row["packed"]:
                found.append(bytes(row["payload"]))
                reached = first
                continue
            try:
                updates = decode_updates(bytes(row["payload"]))
            except BlockFormatError as exc:
                raise BlockFormatError(f"the block of events from {first}: {exc}") from None
            reached = min(through, first + len(updates) - 1)
            found += updates[max(0, after - first + 1) : through - first + 1]
        return reached, found

    async def _segments(self, doc_id: str, after: int, through: int) -> list[Block]:
        segments = await self._packed_segments(doc_id, after, through)
        return [unpacked(segment) for segment in segments]

    async def _packed_segments(
        self, doc_id: str, after: int, through: int, *, tail_previous: bool = False
    ) -> list[Block | PackedBlock]:
        rows = await self._db.fetch(_READ_RANGE, doc_id, after, through)
        segments: list[Block | PackedBlock] = []
        previous: bytes | None = None
        for row in rows:
            if row["packed"]:
                block = PackedBlock(
                    row["seq"],
                    row["last_seq"],
                    bytes(row["previous"]),
                    bytes(row["hash"]),
                    bytes(row["payload"]),
                )
                segments.append(block)
                previous = block.last_hash
                continue
            stored_hash = bytes(row["hash"])
            if previous is None and tail_previous:
                previous = await self._hash_before(doc_id, row["seq"])
            segments.append(
                Block(
                    row["seq"],
                    previous or b"",
                    stored_hash,
                    [_tail_fields(row)],
                    [stored_hash[:HASH_PREFIX]],
                    packed=False,
                )
            )
            previous = stored_hash
        return segments

    async def _hash_before(self, doc_id: str, seq: int) -> bytes:
        """The stored hash of event ``seq - 1`` (the genesis hash before seq 1)."""
        if seq <= 1:
            return GENESIS_HASH
        rows = await self._db.fetch(_READ_RANGE, doc_id, seq - 2, seq - 1)
        if not rows:
            return b""
        return bytes(rows[-1]["hash"])

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
        found = await self.read(doc_id, after=seq - 1, through=seq)
        return found[0] if found else None

    async def events_of_kind(self, doc_id: str, kind: EventKind) -> list[StoredEvent]:
        """Every event of ``kind``, oldest first (blocks without one are not read)."""
        found: list[StoredEvent] = []
        mask = 1 << EVENT_KINDS.index(kind)
        for row in await self._db.fetch(_BLOCKS_WITH_KINDS, doc_id, mask):
            block = _block(row)
            hashes = _stored_hashes(doc_id, block)
            for offset, fields in enumerate(block.events):
                if fields[0] == kind:
                    found.append(_stored(doc_id, block.first_seq + offset, fields, hashes[offset]))
        for row in await self._db.fetch(_TAIL_OF_KIND, doc_id, kind):
            found.append(_stored(doc_id, row["seq"], _tail_fields(row), bytes(row["hash"])))
        return found

    async def seq_at_time(self, doc_id: str, until: float) -> int:
        """The newest seq committed at or before ``until`` (0 if none)."""
        # The tail first: a pack between the reads then shows events twice, never not at all.
        newest: int = await self._db.fetchval(_TAIL_SEQ_AT_TIME, doc_id, until)
        whole: int = await self._db.fetchval(_BLOCKS_SEQ_AT_TIME, doc_id, until)
        newest = max(newest, whole)
        for row in await self._db.fetch(_BLOCKS_STRADDLING_TIME, doc_id, until, newest):
            block = _block(row)
            for offset, fields in enumerate(block.events):
                if fields[4] <= until:
                    newest = max(newest, block.first_seq + offset)
        return newest

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


async def _read_ahead(
    read: Callable[[int], Coroutine[Any, Any, tuple[int, list[_T]]]], after: int, upper: int
) -> AsyncIterator[list[_T]]:
    """Pages of ``read(start)`` (the seq it reached, its items) from ``after`` up to ``upper``.

    The next page is read while the caller works on the current one; reading
    stops at ``upper`` or at a page that reaches nothing new.
    """
    upcoming = asyncio.ensure_future(read(after))
    try:
        while True:
            reached, items = await upcoming
            more = after < reached < upper
            if more:
                after = reached
                upcoming = asyncio.ensure_future(read(after))
            if items:
                yield items
            if not more:
                return
    finally:
        upcoming.cancel()


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
        (event.seq - 1) % TAIL_SLOTS,
    )


def _columns(events: list[StoredEvent]) -> list[list[Any]]:
    """The per-event columns of :data:`_APPEND_AT_KNOWN_HEAD`, one array each."""
    rows = [_row(e) for e in events]
    # _row order: doc_id, seq, kind, payload, author_id, node_id, created_at, meta, hash, source
    return [[row[i] for row in rows] for i in (1, 2, 3, 4, 5, 7, 8, 9)]


def _fills_block(stored: Sequence[StoredEvent]) -> bool:
    """True when these appended events complete at least one block."""
    return bool(stored) and block_start(stored[-1].seq + 1) > block_start(stored[0].seq)


def _upper(after: int, through: int | None, limit: int | None) -> int:
    # Seqs are gap-free, so "at most limit events after" is a seq range.
    upper = _NO_LIMIT if through is None else through
    return upper if limit is None else min(upper, after + limit)


def _tail_fields(row: Row) -> EventFields:
    meta = row["meta"]
    return (
        row["kind"],
        bytes(row["payload"]),
        row["author_id"],
        row["node_id"],
        row["created_at"],
        None if meta is None else canonical_meta(json.loads(meta)),
        row["source"],
    )


def _block(row: Row) -> Block:
    previous, last_hash, body = bytes(row["previous"]), bytes(row["last_hash"]), bytes(row["body"])
    return PackedBlock(row["first_seq"], row["last_seq"], previous, last_hash, body).decode()


def _stored_hashes(doc_id: str, segment: Block) -> list[bytes]:
    """Each event's hash: stored for a tail event, chained from ``previous`` in a block."""
    if not segment.packed:
        return [segment.last_hash]
    hashes = ChainHasher(doc_id).hashes(segment.previous, segment.first_seq, segment.events)
    # A block's seal is its stored last hash, whatever the (possibly altered) body gives.
    hashes[-1] = segment.last_hash
    return hashes


def _stored(doc_id: str, seq: int, fields: EventFields, hash_: bytes) -> StoredEvent:
    kind, update, author_id, node_id, created_at, meta, source = fields
    return StoredEvent(
        doc_id,
        seq,
        kind,
        update,
        author_id,
        node_id,
        created_at,
        None if meta is None else json.loads(meta),
        hash_,
        source,
    )


async def _insert_tail(
    conn: Connection, doc_id: str, head: int, stored: Sequence[StoredEvent]
) -> None:
    """Write ``stored`` (after ``head``) to the tail, packing each block it completes.

    Runs with the head locked. Whole blocks left unpacked (by a node that
    stopped between an append and its pack) are packed first, so no event
    takes the slot of one that is not packed yet.
    """
    await pack_log(conn, doc_id, head)
    start = 0
    while start < len(stored):
        end = start + 1
        while end < len(stored) and block_start(stored[end].seq) == block_start(stored[start].seq):
            end += 1
        await conn.executemany(_INSERT_EVENT, [_row(e) for e in stored[start:end]])
        if stored[end - 1].seq % BLOCK_EVENTS == 0:
            await pack_log(conn, doc_id, stored[end - 1].seq)
        start = end


async def _packed_through(conn: Connection, doc_id: str) -> int:
    packed: int = await conn.fetchval(_PACKED_THROUGH, doc_id)
    return packed


async def pack_log(
    conn: Connection, doc_id: str, through: int, *, delete_packed: bool = False
) -> int:
    """Pack the tail events of whole blocks up to ``through`` into blocks.

    Runs in the caller's transaction, which must hold the log's head (so no
    append or other pack runs meanwhile). Tail rows are moved as stored:
    their fields and hashes are not re-derived, so whatever a check would
    find in them it still finds in the block.

    Returns:
        The number of events packed.
    """
    upto = block_start(through + 1) - 1
    packed = 0
    while True:
        done = await _packed_through(conn, doc_id)
        if done >= upto:
            return packed
        rows = await conn.fetch(_TAIL_TO_PACK, doc_id, upto, _PACK_ROUND * BLOCK_EVENTS, done)
        blocks = [rows[i : i + BLOCK_EVENTS] for i in range(0, len(rows), BLOCK_EVENTS)]
        whole = [
            b for b in blocks if len(b) == BLOCK_EVENTS and b[0]["seq"] == block_start(b[0]["seq"])
        ]
        if not whole:
            return packed
        previous = await _hash_before_block(conn, doc_id, whole[0][0]["seq"])
        for block_rows in whole:
            fields = [_tail_fields(row) for row in block_rows]
            hashes = [bytes(row["hash"]) for row in block_rows]
            kinds = 0
            for kind, *_ in fields:
                kinds |= 1 << EVENT_KINDS.index(kind)
            times = [f[4] for f in fields]
            await conn.execute(
                _INSERT_BLOCK,
                doc_id,
                block_rows[0]["seq"],
                block_rows[-1]["seq"],
                min(times),
                max(times),
                kinds,
                previous,
                hashes[-1],
                encode_body(fields, hashes),
            )
            previous = hashes[-1]
        if delete_packed:
            await conn.execute(_DELETE_PACKED, doc_id, whole[0][0]["seq"], whole[-1][-1]["seq"])
        packed += BLOCK_EVENTS * len(whole)
        if len(whole) < len(blocks) or len(rows) < _PACK_ROUND * BLOCK_EVENTS:
            return packed


async def _hash_before_block(conn: Connection, doc_id: str, first_seq: int) -> bytes:
    if first_seq == 1:
        return GENESIS_HASH
    found = await conn.fetchval(_BLOCK_HASH, doc_id, first_seq - BLOCK_EVENTS)
    # An older tail row not yet packed cannot precede an aligned block here
    # (packing goes in order), so a missing block means a damaged log: chain
    # onto nothing, which any check then reports.
    return b"" if found is None else bytes(found)
