"""Presence sent in the same loop turn leaves as one message, newest entry per client."""

from __future__ import annotations

import asyncio

from collab.realtime.presence import PresenceBatcher
from collab.realtime.protocol import AwarenessEntry


async def test_entries_of_one_turn_are_one_batch() -> None:
    sent: list[list[AwarenessEntry]] = []
    batcher = PresenceBatcher(sent.append)
    batcher.add([AwarenessEntry(1, 1, {"a": 1})])
    batcher.add([AwarenessEntry(2, 1, {"b": 1}), AwarenessEntry(1, 2, {"a": 2})])
    assert sent == []  # nothing leaves before the turn ends
    await asyncio.sleep(0)
    assert sent == [[AwarenessEntry(1, 2, {"a": 2}), AwarenessEntry(2, 1, {"b": 1})]]
    batcher.add([AwarenessEntry(1, 3, None)])
    await asyncio.sleep(0)
    assert sent[-1] == [AwarenessEntry(1, 3, None)]
    assert len(sent) == 2


async def test_flush_sends_at_once_and_nothing_twice() -> None:
    sent: list[list[AwarenessEntry]] = []
    batcher = PresenceBatcher(sent.append)
    batcher.add([AwarenessEntry(7, 1, {})])
    batcher.flush()
    await asyncio.sleep(0)
    batcher.add([])
    await asyncio.sleep(0)
    assert sent == [[AwarenessEntry(7, 1, {})]]
