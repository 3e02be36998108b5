"""Which snapshots to keep: the newest few, then ever sparser with age.

Snapshots are an optimisation: a document (or a past version of it) loads
from the newest snapshot at or before the wanted seq plus the events after
it. Keeping one every few hundred events forever costs a full state each
time, so older snapshots are thinned out:

* the newest :data:`KEEP_NEWEST` are always kept;
* an older snapshot of age ``a`` (events between it and the newest snapshot)
  falls in a bucket of ``gap(a)`` events, the largest power-of-two multiple
  of :data:`BASE_GAP` no larger than ``a / AGE_PER_GAP`` (at least
  ``BASE_GAP``); the oldest snapshot of each bucket is kept, the others are
  dropped.

Buckets are nested (every gap is ``BASE_GAP`` times a power of two), so a
snapshot dropped today would also be dropped later: the kept set only ever
thins, and a snapshot is dropped only for an older kept one in its bucket,
while the newest is never dropped. Since gaps grow in proportion to age,
each doubling of the history adds about ``AGE_PER_GAP`` snapshots: the count
grows with the logarithm of the history, and so do their bytes (at most
that count times the newest state).

The price is replay length: a kept snapshot of age ``a`` is followed by the
next kept one within ``gap(a)`` events plus the interval between saves (its
bucket ends ``gap(a)`` after its start, and the oldest snapshot saved after
that is never dropped for an older one), where ``gap(a) <= a / AGE_PER_GAP``;
time travel replays up to that many events after loading the snapshot.
Old snapshots are small, so a long replay from them stays cheap; near the
head the snapshots are big and close together. The constants were chosen by
measurement (``bench/capacity_log.py``): on a 260,000-keystroke document no
time travel replays more than 16,500 events, and the slowest ones are those
near the head, where loading the 0.9 MB newest state costs most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

KEEP_NEWEST = 4
# Snapshots nearer than this to one another are never both kept (except the
# newest few). Near the head, where states are biggest, loading the state
# costs more than replaying this many events. Measured on a 260,000-event
# document (its worst time travels, verify): 2,048 kept 43 snapshots, 31 times
# the state, and neither was faster; 8,192 kept 28 (17.5 times) but near-head
# replays of 8,500 events made the slowest time travels 41 to 47 ms.
BASE_GAP = 4096
# The gap of a snapshot of age ``a`` is the power-of-two multiple of BASE_GAP
# nearest below ``a / AGE_PER_GAP``: about AGE_PER_GAP snapshots per doubling
# of the history. Six (with BASE_GAP 2,048) kept 15% fewer snapshot bytes,
# but replayed up to 33,000 events for some time travels (53 ms).
AGE_PER_GAP = 8


def most_kept(history: int) -> float:
    """At most this many snapshots are kept for ``history`` events: logarithmic.

    The newest few and the oldest, plus AGE_PER_GAP per doubling of the history
    beyond the narrowest bucket (``tests/eventstore/test_retention.py`` checks it
    up to 10 million events).
    """
    return KEEP_NEWEST + 1 + AGE_PER_GAP * math.log2(max(history, BASE_GAP) / BASE_GAP)


def gap_for_age(age: int) -> int:
    """The bucket width, in events, for a snapshot ``age`` events older than the newest."""
    gap = BASE_GAP
    while gap * 2 * AGE_PER_GAP <= age:
        gap *= 2
    return gap


def snapshots_to_drop(seqs: Sequence[int]) -> list[int]:
    """The seqs of the snapshots to delete, given every snapshot seq of one document."""
    ordered = sorted(set(seqs))
    if len(ordered) <= KEEP_NEWEST:
        return []
    newest = ordered[-1]
    kept_buckets: set[tuple[int, int]] = set()
    drop = []
    for seq in ordered[:-KEEP_NEWEST]:  # oldest first: the first seen in a bucket stays
        gap = gap_for_age(newest - seq)
        bucket = (gap, seq // gap)
        if bucket in kept_buckets:
            drop.append(seq)
        else:
            kept_buckets.add(bucket)
    return drop
