"""Presence sent in the same loop turn leaves as one message, newest entry per client."""

from __future__ import annotations

import asyncio

from collab.realtime.presence import Identity, Presence, PresenceBatcher
from collab.realtime.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    decode_awareness,
    decode_message,
)


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


def test_current_message_is_cached_until_presence_changes() -> None:
    presence = Presence()
    assert presence.current_message() is None
    identity = Identity("peer-1", "user-1", "Ann")
    presence.accept(identity, [AwarenessEntry(1, 1, {"cursor": 1})])
    first = presence.current_message()
    assert first is not None and presence.current_message() is first
    presence.accept(identity, [AwarenessEntry(1, 2, {"cursor": 2})])
    second = presence.current_message()
    assert second is not None and second != first
    message = decode_message(second)
    assert isinstance(message, AwarenessMessage)
    state = decode_awareness(message.payload)[0].state
    assert state is not None and state["cursor"] == 2
    presence.remove_owner("peer-1")
    assert presence.current_message() is None
