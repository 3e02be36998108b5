"""Checking a log end to end: hash chain, decodability, snapshots and head.

The log is replayed from its first event; every snapshot must encode exactly
the state rebuilt at its seq, and the stored head must name the last event
and its hash.

It streams: the log is read a page of blocks at a time (the next page is
fetched while the current one is replayed), snapshots are loaded one at a
time when the replay reaches their seq, and the blocks are decoded and their
hash chain checked in worker processes (:mod:`eventstore.hashcheck`) in
parallel with the replay, which decodes only the updates. With one worker,
the worker also replays the start of a long log while this process replays
the rest (:mod:`eventstore.verify_split`). Memory is a page, one snapshot and
the document, whatever the length of the history.
"""

from __future__ import annotations

from eventstore.eventlog import EventLog, Head
from eventstore.hashcheck import ChainChecker, default_workers
from eventstore.logs import GENESIS_HASH
from eventstore.replaycheck import Progress, ReplayCheck, Verification, check_ends
from eventstore.verify_split import snapshot_state, split_point, verify_in_two

__all__ = ["PAGE_SIZE", "Progress", "Verification", "verify_log"]

PAGE_SIZE = 5000


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
        progress: called with (events replayed, head seq) after each batch.
        hash_workers: processes checking the hash chain (0: in this process;
            None: decided by :func:`eventstore.hashcheck.default_workers`).
            With exactly one, that process also replays the start of a long
            log.

    Raises:
        UnknownLogError: the document has no log.
    """
    head = await log.head(doc_id)
    snapshot_seqs = await log.snapshot_seqs(doc_id)
    workers = default_workers(head.seq) if hash_workers is None else hash_workers
    split = split_point(snapshot_seqs, head.seq) if workers == 1 else None
    if split is not None:
        found = await verify_in_two(log, doc_id, head, snapshot_seqs, split, progress, PAGE_SIZE)
        # Only a clean result is taken: what a damaged log reports, and in
        # which order, is what the replay in order below finds.
        if found is not None and found.ok:
            return found
    return await _verify_in_order(log, doc_id, head, snapshot_seqs, workers, progress)


async def _verify_in_order(
    log: EventLog,
    doc_id: str,
    head: Head,
    snapshot_seqs: list[int],
    workers: int,
    progress: Progress | None,
) -> Verification:
    """The whole log replayed in this process, from its first event."""
    replay = ReplayCheck(snapshot_seqs)
    previous = GENESIS_HASH
    async with ChainChecker(workers, doc_id) as chain:
        async for page in log.packed_segments(doc_id, page=PAGE_SIZE):
            await chain.submit(previous, page)
            for last in replay.feed(page):
                if replay.is_snapshot(last):
                    replay.check_snapshot(last, await snapshot_state(log, doc_id, last))
                if progress is not None:
                    progress(last, head.seq)
            previous = page[-1].last_hash
        broken = await chain.broken()
    result = Verification(replay.events, replay.snapshots_checked, replay.problems)
    result.problems += [f"event {seq}: hash does not follow the chain" for seq in broken]
    check_ends(head, result.events, previous, snapshot_seqs, result)
    return result
