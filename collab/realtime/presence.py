"""Awareness (presence) of one document, defended against spoofing.

y-protocols accepts any client id with a higher clock, so one peer could
overwrite or delete another's cursor. Here each peer owns the client ids it
introduced first; entries for ids owned by someone else are dropped, states
are size-capped, and ``state.user`` is stamped with the identity from the
token. Presence is relayed but never stored.

Which entries are news follows y-protocols' own clock rule, the one every
client applies: a state counts only when its clock is above the last clock
known for that client id (that of its state, or of its removal, or 0 for an
id never seen), and a removal also at an equal clock. An entry the clients
would all drop is then never relayed, and a removal made here keeps the
removed state's clock, so the client's next change is news to everyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from collab.realtime.protocol import (
    AwarenessEntry,
    RawAwarenessEntry,
    awareness_message,
    encode_awareness_entry,
    join_awareness,
)

MAX_CLIENT_IDS_PER_PEER = 4
# Owners of entries relayed from other nodes are named "node:<node id>".
REMOTE_PREFIX = "node:"
MAX_STATE_BYTES = 8 * 1024
# Departed clients whose removal clock is remembered, newest last: enough for
# the copies of their last states that other clients send back in the moments
# after they left, and for the clients that come back after a dropped link.
RECENT_REMOVALS = 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a set of awareness entries belongs to (a local peer or a remote node's)."""

    owner: str
    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ``Presence.accept`` took from a peer, stamped, to forward.

    ``renewals`` repeat a client's state with a higher clock and nothing
    else: the stock client sends one every 15 s, and the others drop a state
    not renewed for 30 s, so a renewal may wait a few seconds for others to
    go out with it; ``changes`` are new or different states, or removals.
    """

    changes: list[AwarenessEntry]
    renewals: list[AwarenessEntry]


class Presence:
    """The current awareness states of a document and who owns each client id."""

    def __init__(self) -> None:
        self._states: dict[int, AwarenessEntry] = {}
        self._owners: dict[int, str] = {}
        self._message: bytes | None = None
        # Each live state encoded once, for the greeting messages.
        self._encoded: dict[int, bytes] = {}
        # The JSON text of each state as its owner last sent it (to spot renewals).
        self._sent_json: dict[int, bytes] = {}
        # client id -> removal clock of clients that went away.
        self._removed: dict[int, int] = {}

    def accept(self, identity: Identity, entries: list[RawAwarenessEntry]) -> Accepted:
        """Apply a peer's entries; return the ones accepted (stamped) to forward.

        A state is parsed only once its entry passed the ownership and clock
        checks: stock clients send back every change they receive, so most
        entries are stale copies of other clients' states.

        Raises:
            ProtocolError: an entry that would be accepted has a malformed state.
        """
        changes, renewals = [], []
        for raw in entries:
            if not self._may_write(identity, raw) or not self._is_newer(
                raw.client_id, raw.clock, removes=raw.removes
            ):
                continue
            if self._renews(identity, raw):
                renewed = AwarenessEntry(
                    raw.client_id, raw.clock, self._states[raw.client_id].state
                )
                self._store(renewed)
                renewals.append(renewed)
                continue
            checked = _stamped(raw.parsed(), identity)
            if checked is None:
                continue
            self._owners[raw.client_id] = identity.owner
            self._removed.pop(raw.client_id, None)
            self._store(checked)
            if checked.state is not None:
                self._sent_json[raw.client_id] = raw.state_json
            changes.append(checked)
        return Accepted(changes, renewals)

    def _remember_removal(self, client_id: int, clock: int) -> None:
        self._removed.pop(client_id, None)
        self._removed[client_id] = clock
        if len(self._removed) > RECENT_REMOVALS:
            del self._removed[next(iter(self._removed))]

    def _renews(self, identity: Identity, raw: RawAwarenessEntry) -> bool:
        """The owner sent the very same state again (with a higher clock)."""
        client_id = raw.client_id
        return (
            self._owners.get(client_id) == identity.owner
            and client_id in self._states
            and self._sent_json.get(client_id) == raw.state_json
        )

    def adopt(self, owner: str, entry: AwarenessEntry) -> None:
        """Record an entry another node already checked, owned by that node."""
        if self._owners.get(entry.client_id, owner) != owner or not self._is_newer(
            entry.client_id, entry.clock, removes=entry.state is None
        ):
            return
        self._owners[entry.client_id] = owner
        self._store(entry)
        if entry.state is None:
            del self._owners[entry.client_id]

    def client_ids_of(self, owner: str) -> list[int]:
        """The client ids ``owner`` introduced."""
        return [cid for cid, who in self._owners.items() if who == owner]

    def remove_owner(self, owner: str) -> list[AwarenessEntry]:
        """Forget ``owner``'s clients; return the removal entries to broadcast.

        A removal keeps the removed state's clock, as y-protocols removes a
        state that timed out: clients take a removal at an equal clock, and
        the client's next change (one above it) is then news to all of them.
        A client that already sent its own removal needs none.
        """
        removed = []
        for client_id in self.client_ids_of(owner):
            del self._owners[client_id]
            previous = self._states.get(client_id)
            if previous is None:
                continue
            removal = AwarenessEntry(client_id, previous.clock, None)
            self._store(removal)
            removed.append(removal)
        return removed

    def current(self) -> list[AwarenessEntry]:
        """Every live state (for a newly connected peer).

        Entries of a node that went silent are removed by ``remove_owner``
        when the node is declared dead (missed heartbeats), not here.
        """
        return [entry for entry in self._states.values() if entry.state is not None]

    def current_message(self) -> bytes | None:
        """Every live state as one awareness message (None when nobody is present).

        Encoded once per change, not once per joining peer, and each state
        once while it lasts: in a reconnect storm every newcomer is sent the
        states of everyone already there, and each newcomer changes them.
        """
        if self._message is None:
            encoded = [self._encoded_entry(entry) for entry in self.current()]
            self._message = awareness_message(join_awareness(encoded)) if encoded else b""
        return self._message or None

    def _encoded_entry(self, entry: AwarenessEntry) -> bytes:
        encoded = self._encoded.get(entry.client_id)
        if encoded is None:
            encoded = self._encoded[entry.client_id] = encode_awareness_entry(entry)
        return encoded

    def _may_write(self, identity: Identity, entry: RawAwarenessEntry) -> bool:
        current = self._owners.get(entry.client_id)
        if current is None:
            # Removing a client nobody owns is a copy of a removal already
            # made: taking ownership of it would count towards the peer's cap.
            return not entry.removes and (
                len(self.client_ids_of(identity.owner)) < MAX_CLIENT_IDS_PER_PEER
            )
        if current == identity.owner:
            return True
        # A client whose node died reconnects here with the same client id:
        # the same user may take it over from the remote owner.
        return (
            current.startswith(REMOTE_PREFIX) and self._user_of(entry.client_id) == identity.user_id
        )

    def _user_of(self, client_id: int) -> str | None:
        entry = self._states.get(client_id)
        user = entry.state.get("user") if entry and entry.state else None
        return user.get("id") if isinstance(user, dict) else None

    def _is_newer(self, client_id: int, clock: int, *, removes: bool) -> bool:
        """y-protocols' rule: above the last known clock, or a removal at it of a live state."""
        previous = self._states.get(client_id)
        if previous is None:
            return clock > self._removed.get(client_id, 0)
        return clock > previous.clock or (clock == previous.clock and removes)

    def _store(self, entry: AwarenessEntry) -> None:
        self._message = None
        self._encoded.pop(entry.client_id, None)
        if entry.state is None:
            self._remember_removal(entry.client_id, entry.clock)
            self._sent_json.pop(entry.client_id, None)
            self._states.pop(entry.client_id, None)
        else:
            self._states[entry.client_id] = entry


def _stamped(entry: AwarenessEntry, identity: Identity) -> AwarenessEntry | None:
    """The entry with ``state.user`` set from the token, or None when too large."""
    if entry.state is None:
        return entry
    state: dict[str, Any] = dict(entry.state)
    claimed = state.get("user")
    user = dict(claimed) if isinstance(claimed, dict) else {}
    user.update(id=identity.user_id, name=identity.user_name)
    state["user"] = user
    if len(json.dumps(state, separators=(",", ":"))) > MAX_STATE_BYTES:
        return None
    return AwarenessEntry(entry.client_id, entry.clock, state)
