"""Copies of a departed client's state, sent back by other clients, do not bring it back.

Stock clients send back every awareness change they receive, so the last state
of a client that left can still arrive from others just after its removal.
"""

from __future__ import annotations

from collab.realtime.presence import RECENT_REMOVALS, Identity, Presence
from collab.realtime.protocol import RawAwarenessEntry

ANN = Identity("peer-ann", "user-ann", "Ann")
BOB = Identity("peer-bob", "user-bob", "Bob")
CURSOR = b'{"cursor":7}'


def present(presence: Presence) -> dict[int, str]:
    """Client id -> the user stamped on its state, for every live state."""
    return {
        entry.client_id: entry.state["user"]["id"]
        for entry in presence.current()
        if entry.state is not None
    }


def test_a_copy_arriving_after_the_owner_left_is_dropped() -> None:
    presence = Presence()
    presence.accept(ANN, [RawAwarenessEntry(1, 3, CURSOR)])
    presence.remove_owner(ANN.owner)
    accepted = presence.accept(BOB, [RawAwarenessEntry(1, 3, CURSOR)])
    assert accepted.changes == [] and accepted.renewals == []
    assert present(presence) == {}
    assert presence.client_ids_of(BOB.owner) == []


def test_a_copy_arriving_after_the_owner_cleared_its_state_is_dropped() -> None:
    presence = Presence()
    presence.accept(ANN, [RawAwarenessEntry(1, 3, CURSOR)])
    presence.accept(ANN, [RawAwarenessEntry(1, 4, b"null")])
    assert presence.accept(BOB, [RawAwarenessEntry(1, 3, CURSOR)]).changes == []
    assert present(presence) == {}


def test_a_newer_state_of_that_client_id_is_taken() -> None:
    presence = Presence()
    presence.accept(ANN, [RawAwarenessEntry(1, 3, CURSOR)])
    presence.remove_owner(ANN.owner)
    assert len(presence.accept(BOB, [RawAwarenessEntry(1, 9, CURSOR)]).changes) == 1
    assert present(presence) == {1: BOB.user_id}


def test_departures_are_remembered_within_a_bound() -> None:
    presence = Presence()
    for client_id in range(1, RECENT_REMOVALS + 2):
        owner = Identity(f"peer-{client_id}", "user-ann", "Ann")
        presence.accept(owner, [RawAwarenessEntry(client_id, 1, CURSOR)])
        presence.remove_owner(owner.owner)
    # The oldest departure is forgotten; the newest still keeps its copies out.
    assert len(presence.accept(BOB, [RawAwarenessEntry(1, 1, CURSOR)]).changes) == 1
    newest = RawAwarenessEntry(RECENT_REMOVALS + 1, 1, CURSOR)
    assert presence.accept(BOB, [newest]).changes == []
