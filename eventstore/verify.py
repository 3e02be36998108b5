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

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from eventstore.blocks import Block, PackedBlock
from eventstore.crdt import UpdateRejectedError, apply_update, new_doc
from eventstore.eventlog import EventLog
from eventstore.hashcheck import ChainChecker, default_workers
from eventstore.logs import GENESIS_HASH
from eventstore.replay import APPLY_BATCH, apply_batch

Progress = Callable[[int, int], None]
PAGE_SIZE = 5000


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
    replay = _Replay(log, doc_id, snapshot_seqs, result)
    previous, expected_seq = GENESIS_HASH, 1
    workers = default_workers(head.seq) if hash_workers is None else hash_workers
    async with ChainChecker(workers, doc_id) as chain:
        async for page in log.packed_segments(doc_id, page=PAGE_SIZE):
            await chain.submit(previous, page)
            for first_seq, updates in _runs_of(page):
                if first_seq != expected_seq:
                    result.problems.append(f"seq {expected_seq} is missing (found {first_seq})")
                await replay.apply(first_seq, updates, progress, head.seq)
                expected_seq = first_seq + len(updates)
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
        self, log: EventLog, doc_id: str, snapshot_seqs: Sequence[int], result: Verification
    ) -> None:
        self._log = log
        self._doc_id = doc_id
        self._snapshot_seqs = sorted(snapshot_seqs)
        self._result = result
        self.doc: Doc[Any] = new_doc()

    async def apply(
        self, first_seq: int, updates: Sequence[bytes], progress: Progress | None, head: int
    ) -> None:
        """Apply the consecutive events ``first_seq``, ``first_seq + 1``, ... in batches.

        Batch bounds are worked out from the seqs rather than per event: on a
        long log, Python work per event was a tenth of a verify.
        """
        start = 0
        while start < len(updates):
            end = self._batch_end(first_seq, start, len(updates))
            batch = updates[start:end]
            for index, exc in apply_batch(self.doc, batch):
                seq = first_seq + start + index
                self._result.problems.append(f"event {seq}: update does not decode ({exc})")
            self._result.events += len(batch)
            last = first_seq + end - 1
            if self._is_snapshot(last):
                await self._check_snapshot(last)
            if progress is not None:
                progress(last, head)
            start = end

    def _batch_end(self, first_seq: int, start: int, length: int) -> int:
        """The end of the batch from index ``start``: APPLY_BATCH on, or just past a snapshot."""
        end = min(start + APPLY_BATCH, length)
        cut = bisect.bisect_left(self._snapshot_seqs, first_seq + start)
        if cut < len(self._snapshot_seqs):
            end = min(end, self._snapshot_seqs[cut] - first_seq + 1)
        return end

    def _is_snapshot(self, seq: int) -> bool:
        index = bisect.bisect_left(self._snapshot_seqs, seq)
        return index < len(self._snapshot_seqs) and self._snapshot_seqs[index] == seq

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


def _runs_of(page: Sequence[Block | PackedBlock]) -> list[tuple[int, list[bytes]]]:
    """The page's updates as runs of consecutive seqs: (first seq, updates).

    Only the updates are decoded. A page is one run unless a seq is missing.
    """
    runs: list[tuple[int, list[bytes]]] = []
    for segment in page:
        if isinstance(segment, PackedBlock):
            found = segment.updates()
        else:
            found = [fields[1] for fields in segment.events]
        if runs and runs[-1][0] + len(runs[-1][1]) == segment.first_seq:
            runs[-1][1].extend(found)
        else:
            runs.append((segment.first_seq, found))
    return runs


def _check_head(
    head_seq: int, head_hash: bytes, events: int, last_hash: bytes, result: Verification
) -> None:
    if head_seq != events:
        result.problems.append(f"head says seq {head_seq} but the log has {events} events")
    if head_hash != last_hash:
        result.problems.append("head hash differs from the last event's hash")
