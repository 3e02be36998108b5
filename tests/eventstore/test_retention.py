"""Snapshot retention: bounded total, bounded replay, only ever thinning."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pycrdt import Doc, Text

from eventstore import Database
from eventstore.crdt import encode_state, text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log
from eventstore.replay import rebuild
from eventstore.retention import KEEP_NEWEST, MAX_GAP, gap_for_age, snapshots_to_drop
from eventstore.verify import verify_log


def simulate(events: int, every: int) -> list[list[int]]:
    """The kept seqs after each snapshot of a log snapshotted every ``every`` events."""
    kept: list[int] = []
    history = []
    for seq in range(every, events + 1, every):
        kept.append(seq)
        drop = set(snapshots_to_drop(kept))
        kept = [s for s in kept if s not in drop]
        history.append(list(kept))
    return history


def test_gap_doubles_with_age_up_to_the_cap() -> None:
    assert gap_for_age(0) == 512
    gaps = [gap_for_age(age) for age in range(0, 200_000, 1000)]
    assert gaps == sorted(gaps)
    assert max(gaps) == MAX_GAP


def test_few_snapshots_are_all_kept() -> None:
    assert snapshots_to_drop([]) == []
    assert snapshots_to_drop(list(range(1, KEEP_NEWEST + 1))) == []


@pytest.mark.parametrize("every", [500, 100, 3000])
def test_a_long_history_keeps_few_snapshots_close_enough(every: int) -> None:
    history = simulate(260_000, every)
    final = history[-1]
    # Without retention: one every 500 events for ever (520 here). With it: about
    # one per MAX_GAP events, plus the newest few and a short logarithmic tail.
    assert len(final) <= 260_000 // MAX_GAP + KEEP_NEWEST + 16
    assert final[0] == every  # the oldest is never dropped
    assert final[-1] == 260_000 // every * every  # nor the newest
    gaps = [b - a for a, b in itertools.pairwise(final)]
    assert max(gaps) <= max(2 * MAX_GAP, every)


def test_kept_set_only_thins() -> None:
    history = simulate(100_000, 500)
    for before, after in itertools.pairwise(history):
        # Everything kept now was kept before, except the snapshot just saved.
        assert set(after[:-1]) <= set(before)


def typed(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=11)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text) // 2, "abcdefghij"[i % 10])
    return updates


@pytest.mark.timeout(120)
async def test_saved_snapshots_are_pruned_and_time_travel_stays_exact(db: Database) -> None:
    async with db.transaction() as conn:
        await create_log(conn, "long")
    log = EventLog(db)
    updates = typed(12_000)
    shadow: Doc[Any] = Doc(client_id=12)
    texts = [""]
    every = 250
    for start in range(0, len(updates), every):
        chunk = updates[start : start + every]
        await log.append("long", [NewEvent("update", u, "u", "n") for u in chunk])
        for update in chunk:
            shadow.apply_update(update)
            texts.append(text_of(shadow))
        await log.save_snapshot("long", start + len(chunk), encode_state(shadow))
    seqs = await log.snapshot_seqs("long")
    assert len(seqs) < len(updates) // every
    assert seqs == [s for s in range(every, len(updates) + 1, every) if s in seqs]
    for at in (1, 249, 250, 251, 3333, 7777, 11_999, 12_000):
        rebuilt = await rebuild(log, "long", at=at)
        assert text_of(rebuilt.doc) == texts[at]
        assert rebuilt.events_read <= 2 * MAX_GAP
    result = await verify_log(log, "long")
    assert result.ok, result.problems
    assert result.snapshots_checked == len(seqs)
