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
from eventstore.retention import (
    AGE_PER_GAP,
    BASE_GAP,
    KEEP_NEWEST,
    gap_for_age,
    most_kept,
    snapshots_to_drop,
)
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


def test_gap_grows_in_proportion_to_age_without_a_cap() -> None:
    assert gap_for_age(0) == BASE_GAP
    ages = range(0, 50_000_000, 9973)
    gaps = [gap_for_age(age) for age in ages]
    assert gaps == sorted(gaps)
    for age, gap in zip(ages, gaps, strict=True):
        assert gap % BASE_GAP == 0
        assert (gap // BASE_GAP).bit_count() == 1  # nested buckets: powers of two
        assert gap <= max(BASE_GAP, age / AGE_PER_GAP)
        assert gap == BASE_GAP or gap > age / (2 * AGE_PER_GAP)


def test_few_snapshots_are_all_kept() -> None:
    assert snapshots_to_drop([]) == []
    assert snapshots_to_drop(list(range(1, KEEP_NEWEST + 1))) == []


@pytest.mark.timeout(120)
def test_the_count_grows_with_the_logarithm_of_the_history_up_to_10m_events() -> None:
    # A room saves about every 500 events; step through 10M events that way,
    # checking after each save (only the current kept set is held).
    every = 500
    kept: list[int] = []
    for seq in range(every, 10_000_000 + 1, every):
        kept.append(seq)
        dropped = snapshots_to_drop(kept)
        # A dropped snapshot always has a newer one kept, and the newest stays.
        assert seq not in dropped
        kept = [s for s in kept if s not in set(dropped)]
        assert len(kept) <= most_kept(seq), (seq, len(kept))
    assert len(kept) <= 80  # of 20,000 saved; over 600 if the spacing stopped at 8,192


@pytest.mark.parametrize("every", [500, 100, 2000])
def test_kept_snapshots_are_close_enough_for_their_age(every: int) -> None:
    history = simulate(260_000, every)
    final = history[-1]
    assert len(final) <= most_kept(260_000) + 1
    assert final[0] == every  # the oldest is never dropped
    assert final[-1] == 260_000 // every * every  # nor the newest
    newest = final[-1]
    for older, newer in itertools.pairwise(final):
        # What a time travel between them replays at most.
        assert newer - older <= gap_for_age(newest - older) + every


def test_kept_set_only_thins_and_drops_only_what_a_newer_one_follows() -> None:
    history = simulate(300_000, 500)
    for before, after in itertools.pairwise(history):
        # Everything kept now was kept before, except the snapshot just saved.
        assert set(after[:-1]) <= set(before)
        for dropped in set(before) - set(after):
            assert any(kept > dropped for kept in after)


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
        assert rebuilt.events_read <= gap_for_age(len(updates) - rebuilt.snapshot_seq) + every
    result = await verify_log(log, "long")
    assert result.ok, result.problems
    assert result.snapshots_checked == len(seqs)
