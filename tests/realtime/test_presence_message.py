"""The awareness message greeting a newcomer is encoded once per change."""

from __future__ import annotations

from collab.realtime.presence import Identity, Presence
from collab.realtime.protocol import (
    AwarenessMessage,
    RawAwarenessEntry,
    decode_awareness,
    decode_message,
)


def test_current_message_is_cached_until_presence_changes() -> None:
    presence = Presence()
    assert presence.current_message() is None
    identity = Identity("peer-1", "user-1", "Ann")
    presence.accept(identity, [RawAwarenessEntry(1, 1, b'{"cursor":1}')])
    first = presence.current_message()
    assert first is not None and presence.current_message() is first
    presence.accept(identity, [RawAwarenessEntry(1, 2, b'{"cursor":2}')])
    second = presence.current_message()
    assert second is not None and second != first
    message = decode_message(second)
    assert isinstance(message, AwarenessMessage)
    state = decode_awareness(message.payload)[0].state
    assert state is not None and state["cursor"] == 2
    presence.remove_owner("peer-1")
    assert presence.current_message() is None
