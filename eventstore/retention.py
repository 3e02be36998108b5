"""Which snapshots to keep: the newest few, then ever sparser with age.

Snapshots are an optimisation: a document (or a past version of it) loads
from the newest snapshot at or before the wanted seq plus the events after
it. Keeping one every few hundred events forever costs a full state each
time, so older snapshots are thinned out:

* the newest :data:`KEEP_NEWEST` are always kept;
* an older snapshot of age ``a`` (events between it and the newest snapshot)
  falls in a bucket of ``gap(a)`` events, where ``gap`` doubles as the age
  quadruples, from :data:`BASE_GAP` up to :data:`MAX_GAP`; the oldest snapshot
  of each bucket is kept, the others are dropped.

Buckets are nested (every gap is ``BASE_GAP`` times a power of two), so a
snapshot dropped today would also be dropped later: the kept set only ever
thins. Two consecutive kept snapshots are at most ``2 * MAX_GAP`` events apart,
which bounds the replay of any time travel; the number kept grows with the
logarithm of the history up to ``MAX_GAP`` spacing, then linearly at one
snapshot per ``MAX_GAP`` to ``2 * MAX_GAP`` events.
"""

from __future__ import annotations

from collections.abc import Sequence

KEEP_NEWEST = 4
BASE_GAP = 512
MAX_GAP = 4096
# The gap of a snapshot of age ``a`` is the power-of-two multiple of BASE_GAP
# nearest below ``a / AGE_PER_GAP``.
AGE_PER_GAP = 4


def gap_for_age(age: int) -> int:
    """The bucket width, in events, for a snapshot ``age`` events older than the newest."""
    gap = BASE_GAP
    while gap < MAX_GAP and gap * 2 * AGE_PER_GAP <= age:
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
