"""Checking a log end to end: hash chain, decodability, snapshots and head.

The log is replayed from its first event without using any snapshot; every
snapshot must encode exactly the state rebuilt at its seq, and the stored
head must name the last event and its hash.

It streams: the log is read a page of blocks at a time (the next page is
fetched while the current one is replayed), snapshots are loaded one at a time when the
replay reaches their seq, and the blocks are decoded and their hash chain
checked in worker processes (:mod:`eventstore.hashcheck`) in parallel with the
replay, which decodes only the updates. Memory is a page, one snapshot and the
document, whatever the length of the history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from eventstore.blocks import Block, PackedBlock
from eventstore.crdt import UpdateRejectedError, apply_update, new_doc
from eventstore.eventlog import EventLog
from eventstore.hashcheck import ChainChecker, default_workers
from eventstore.logs import GENESIS_HASH
from eventstore.replay import apply_batch

Progress = Callable[[int, int], None]
# (seq, update) of one event being replayed.
_Update = tuple[int, bytes]
PAGE_SIZE = 5000
# Updates applied per yrs transaction: far faster than one transaction each,
# and small enough that one bad update is reported on its own.
APPLY_BATCH = 100


@dataclass(slots=True)
class Verification:
    """What :func:`verify_log` found; ``ok`` only when ``problems`` is empty."""

    events: int = 0
    snapshots_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the log, its snapshots and its head all agree."""
        return not self.problems


async def verify_log(
    log: EventLog,
    doc_id: str,
    progress: Progress | None = None,
    *,
    hash_workers: int | None = None,
) -> Verification:
    """Replay the whole log of ``doc_id`` and check everything against it.

    Args:
        log: the event log.
        doc_id: the document.
        progress: called with (seq reached, head seq) after each batch.
        hash_workers: processes checking the hash chain (0: in this process;
            None: decided by :func:`eventstore.hashcheck.default_workers`).

    Raises:
        UnknownLogError: the document has no log.
    """
    head = await log.head(doc_id)
    snapshot_seqs = await log.snapshot_seqs(doc_id)
    result = Verification()
    replay = _Replay(log, doc_id, set(snapshot_seqs), result)
    previous, expected_seq = GENESIS_HASH, 1
    workers = default_workers(head.seq) if hash_workers is None else hash_workers
    async with ChainChecker(workers, doc_id) as chain:
        async for page in log.packed_segments(doc_id, page=PAGE_SIZE):
            await chain.submit(previous, page)
            updates = []
            for first_seq, found in _updates_of(page):
                if first_seq != expected_seq:
                    result.problems.append(f"seq {expected_seq} is missing (found {first_seq})")
                updates += [(first_seq + offset, u) for offset, u in enumerate(found)]
                expected_seq = first_seq + len(found)
            await replay.apply(updates, progress, head.seq)
            previous = page[-1].last_hash
        broken = await chain.broken()
    result.problems += [f"event {seq}: hash does not follow the chain" for seq in broken]
    _check_head(head.seq, head.hash, result.events, previous, result)
    stray = [seq for seq in snapshot_seqs if seq > head.seq or seq < 1]
    result.problems += [f"snapshot at {seq} is outside the log" for seq in stray]
    return result


class _Replay:
    """The document rebuilt event by event, checked against each snapshot on the way."""

    def __init__(
        self, log: EventLog, doc_id: str, snapshot_seqs: set[int], result: Verification
    ) -> None:
        self._log = log
        self._doc_id = doc_id
        self._snapshot_seqs = snapshot_seqs
        self._result = result
        self.doc: Doc[Any] = new_doc()

    async def apply(self, updates: Sequence[_Update], progress: Progress | None, head: int) -> None:
        for batch in _batches(updates, self._snapshot_seqs):
            for index, exc in apply_batch(self.doc, [update for _, update in batch]):
                seq = batch[index][0]
                self._result.problems.append(f"event {seq}: update does not decode ({exc})")
            self._result.events += len(batch)
            last = batch[-1][0]
            if last in self._snapshot_seqs:
                await self._check_snapshot(last)
            if progress is not None:
                progress(last, head)

    async def _check_snapshot(self, seq: int) -> None:
        snapshot = await self._log.snapshot_at(self._doc_id, seq)
        if snapshot is None:  # pruned meanwhile by a node saving a newer one
            return
        self._result.snapshots_checked += 1
        replayed = self.doc.get_update()
        # yrs encodes equal states alike, so equal bytes settle it without
        # decoding the snapshot (most of the cost of a check on a long log).
        if snapshot.state == replayed:
            return
        stored = new_doc()
        try:
            apply_update(stored, snapshot.state)
        except UpdateRejectedError:
            self._result.problems.append(f"snapshot at {seq} does not decode")
            return
        if stored.get_update() != replayed:
            self._result.problems.append(f"snapshot at {seq} differs from the replayed state")


def _batches(page: Sequence[_Update], cuts: set[int]) -> list[Sequence[_Update]]:
    """``page`` in runs of at most APPLY_BATCH events, each snapshot seq ending a run."""
    batches = []
    start = 0
    for index, (seq, _) in enumerate(page):
        if index + 1 - start >= APPLY_BATCH or seq in cuts:
            batches.append(page[start : index + 1])
            start = index + 1
    if start < len(page):
        batches.append(page[start:])
    return batches


def _updates_of(page: Sequence[Block | PackedBlock]) -> list[tuple[int, list[bytes]]]:
    """The first seq and the updates of each block (only the updates are decoded)."""
    return [
        (segment.first_seq, segment.updates())
        if isinstance(segment, PackedBlock)
        else (segment.first_seq, [fields[1] for fields in segment.events])
        for segment in page
    ]


def _check_head(
    head_seq: int, head_hash: bytes, events: int, last_hash: bytes, result: Verification
) -> None:
    if head_seq != events:
        result.problems.append(f"head says seq {head_seq} but the log has {events} events")
    if head_hash != last_hash:
        result.problems.append("head hash differs from the last event's hash")
