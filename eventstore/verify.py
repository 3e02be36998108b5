"""Checking a log end to end: hash chain, decodability, snapshots and head.

The log is replayed from its first event without using any snapshot; every
snapshot must encode exactly the state rebuilt at its seq, and the stored
head must name the last event and its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eventstore.crdt import UpdateRejectedError, apply_update, new_doc
from eventstore.eventlog import EventLog, Snapshot
from eventstore.events import StoredEvent, verify_chain
from eventstore.logs import GENESIS_HASH

Progress = Callable[[int, int], None]


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


async def verify_log(log: EventLog, doc_id: str, progress: Progress | None = None) -> Verification:
    """Replay the whole log of ``doc_id`` and check everything against it.

    Raises:
        UnknownLogError: the document has no log.
    """
    head = await log.head(doc_id)
    snapshots = {s.seq: s for s in await log.snapshots(doc_id)}
    result = Verification()
    doc = new_doc()
    previous, expected_seq = GENESIS_HASH, 1
    async for event in log.iterate(doc_id):
        if event.seq != expected_seq:
            result.problems.append(f"seq {expected_seq} is missing (found {event.seq})")
        expected_seq = event.seq + 1
        if _hash_breaks(previous, event):
            result.problems.append(f"event {event.seq}: hash does not follow the chain")
        previous = event.hash
        try:
            apply_update(doc, event.update)
        except UpdateRejectedError as exc:
            result.problems.append(f"event {event.seq}: update does not decode ({exc})")
        result.events += 1
        if event.seq in snapshots:
            _check_snapshot(snapshots[event.seq], doc.get_update(), result)
        if progress is not None:
            progress(event.seq, head.seq)
    _check_head(head.seq, head.hash, result.events, previous, result)
    stray = [seq for seq in snapshots if seq > head.seq or seq < 1]
    result.problems += [f"snapshot at {seq} is outside the log" for seq in stray]
    return result


def _hash_breaks(previous: bytes, event: StoredEvent) -> bool:
    return verify_chain(previous, [event]) is not None


def _check_snapshot(snapshot: Snapshot, rebuilt_state: bytes, result: Verification) -> None:
    result.snapshots_checked += 1
    doc = new_doc()
    try:
        apply_update(doc, snapshot.state)
    except UpdateRejectedError:
        result.problems.append(f"snapshot at {snapshot.seq} does not decode")
        return
    if doc.get_update() != rebuilt_state:
        result.problems.append(f"snapshot at {snapshot.seq} differs from the replayed state")


def _check_head(
    head_seq: int, head_hash: bytes, events: int, last_hash: bytes, result: Verification
) -> None:
    if head_seq != events:
        result.problems.append(f"head says seq {head_seq} but the log has {events} events")
    if head_hash != last_hash:
        result.problems.append("head hash differs from the last event's hash")
