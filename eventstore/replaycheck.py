"""Replaying stored blocks into a document, checked against snapshots on the way.

The synchronous core of ``collab replay --verify``: it runs in the verifying
process and, for part of a long log, in a worker process
(:mod:`eventstore.verify_split`). The caller fetches each snapshot's state
when the replay reaches its seq; this class only compares.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from eventstore.blocks import Block, PackedBlock
from eventstore.crdt import UpdateRejectedError, apply_update, new_doc
from eventstore.eventlog import Head
from eventstore.replay import APPLY_BATCH, apply_batch

# Any seq: no upper bound on what is replayed.
NO_LIMIT = 2**62
# Called with (events replayed, head seq).
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Verification:
    """What a verify found; ``ok`` only when ``problems`` is empty."""

    events: int = 0
    snapshots_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the log, its snapshots and its head all agree."""
        return not self.problems


class ReplayCheck:
    """A document replayed event by event, with what the replay found wrong.

    It starts empty at seq 1, or from ``state`` (a snapshot already shown to
    equal the replay at ``after``) at ``after + 1``.

    Raises:
        UpdateRejectedError: ``state`` does not decode.
    """

    def __init__(self, snapshot_seqs: Sequence[int], *, after: int = 0, state: bytes = b"") -> None:
        self.doc: Doc[Any] = new_doc()
        if state:
            apply_update(self.doc, state)
        self.expected_seq = after + 1
        self.events = 0
        self.snapshots_checked = 0
        self.problems: list[str] = []
        self._snapshot_seqs = sorted(snapshot_seqs)

    def feed(
        self, page: Sequence[Block | PackedBlock], *, after: int = 0, through: int = NO_LIMIT
    ) -> Iterator[int]:
        """Apply the page's events ``after < seq <= through``; yield the last seq of each batch.

        A yielded seq that :meth:`is_snapshot` is where the caller hands the
        stored snapshot to :meth:`check_snapshot`, before resuming.
        """
        for first_seq, updates in runs_of(page):
            start = max(0, after + 1 - first_seq)
            end = min(len(updates), through - first_seq + 1)
            if start >= end:
                continue
            if first_seq + start != self.expected_seq:
                found = first_seq + start
                self.problems.append(f"seq {self.expected_seq} is missing (found {found})")
            yield from self._apply(first_seq + start, updates[start:end])
            self.expected_seq = first_seq + end

    def is_snapshot(self, seq: int) -> bool:
        """True when a snapshot was taken right after ``seq``."""
        index = bisect.bisect_left(self._snapshot_seqs, seq)
        return index < len(self._snapshot_seqs) and self._snapshot_seqs[index] == seq

    def check_snapshot(self, seq: int, state: bytes | None) -> None:
        """Compare the stored snapshot at ``seq`` (None: pruned meanwhile) with the replay."""
        if state is None:  # pruned by a node saving a newer one
            return
        self.snapshots_checked += 1
        replayed = self.doc.get_update()
        # yrs encodes equal states alike, so equal bytes settle it without
        # decoding the snapshot (most of the cost of a check on a long log).
        if state == replayed:
            return
        stored = new_doc()
        try:
            apply_update(stored, state)
        except UpdateRejectedError:
            self.problems.append(f"snapshot at {seq} does not decode")
            return
        if stored.get_update() != replayed:
            self.problems.append(f"snapshot at {seq} differs from the replayed state")

    def _apply(self, first_seq: int, updates: Sequence[bytes]) -> Iterator[int]:
        """Apply consecutive events in batches; batch bounds come from the seqs, not per event.

        On a long log, Python work per event was a tenth of a verify.
        """
        start = 0
        while start < len(updates):
            end = self._batch_end(first_seq, start, len(updates))
            batch = updates[start:end]
            for index, exc in apply_batch(self.doc, batch):
                seq = first_seq + start + index
                self.problems.append(f"event {seq}: update does not decode ({exc})")
            self.events += len(batch)
            start = end
            yield first_seq + end - 1

    def _batch_end(self, first_seq: int, start: int, length: int) -> int:
        """The end of the batch from index ``start``: APPLY_BATCH on, or just past a snapshot."""
        end = min(start + APPLY_BATCH, length)
        cut = bisect.bisect_left(self._snapshot_seqs, first_seq + start)
        if cut < len(self._snapshot_seqs):
            end = min(end, self._snapshot_seqs[cut] - first_seq + 1)
        return end


def runs_of(page: Sequence[Block | PackedBlock]) -> list[tuple[int, list[bytes]]]:
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
            runs.append((segment.first_seq, list(found)))
    return runs


def check_ends(
    head: Head, events: int, last_hash: bytes, snapshot_seqs: Sequence[int], result: Verification
) -> None:
    """The stored head must name the last event replayed and its hash; snapshots lie inside."""
    stray = [seq for seq in snapshot_seqs if seq > head.seq or seq < 1]
    result.problems += [f"snapshot at {seq} is outside the log" for seq in stray]
    if head.seq != events:
        result.problems.append(f"head says seq {head.seq} but the log has {events} events")
    if head.hash != last_hash:
        result.problems.append("head hash differs from the last event's hash")
