"""Presence follows y-protocols' clock rule, so what the server relays is what clients apply.

A y-protocols client applies a state only when its clock is above the last
clock it saw for that client id (0 for one it never saw), and a removal also
at an equal clock. The server applies the same rule: it never relays an entry
that every client would drop, and its removals leave a client's next change
visible to everyone.
"""

from __future__ import annotations

import os

import pytest

from collab.realtime.presence import Identity, Presence
from collab.realtime.protocol import AwarenessEntry, RawAwarenessEntry
from tests.conftest import Client
from tests.realtime.seed import Seeded
from tests.support.tcpproxy import ProxyMode, TcpProxy
from tests.support.yjs import YjsClients, node_available

ANN = Identity("peer-ann", "user-ann", "Ann")
CURSOR = b'{"cursor":7}'


def test_a_first_state_at_clock_0_is_not_taken() -> None:
    # A fresh Awareness starts at clock 0, which no y-protocols client applies
    # for a client id it does not know: relaying it would only cost frames.
    presence = Presence()
    accepted = presence.accept(ANN, [RawAwarenessEntry(1, 0, b"{}")])
    assert accepted.changes == [] and accepted.renewals == []
    assert presence.current() == [] and presence.client_ids_of(ANN.owner) == []
    assert len(presence.accept(ANN, [RawAwarenessEntry(1, 1, b"{}")]).changes) == 1


def test_a_closed_connections_removal_keeps_the_states_clock() -> None:
    presence = Presence()
    presence.accept(ANN, [RawAwarenessEntry(1, 3, CURSOR)])
    assert presence.remove_owner(ANN.owner) == [AwarenessEntry(1, 3, None)]


def test_after_a_removal_only_a_higher_clock_brings_the_client_back() -> None:
    presence = Presence()
    presence.accept(ANN, [RawAwarenessEntry(1, 3, CURSOR)])
    presence.remove_owner(ANN.owner)
    again = Identity("peer-ann-2", ANN.user_id, ANN.user_name)
    # Its old state again is what every client that saw the removal drops.
    assert presence.accept(again, [RawAwarenessEntry(1, 3, CURSOR)]).changes == []
    assert presence.current() == []
    assert len(presence.accept(again, [RawAwarenessEntry(1, 4, CURSOR)]).changes) == 1


@pytest.mark.node
@pytest.mark.skipif(
    not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
)
@pytest.mark.timeout(60)
async def test_a_stock_client_whose_link_dropped_is_seen_at_its_next_change(
    client: Client, seeded: Seeded
) -> None:
    # The link drops without the client's goodbye (a network fault), so the
    # server removes the client's state itself, and the client comes back
    # on its own with the clock it had.
    editor = {"id": seeded.users["editor"].id, "name": "Editor"}
    token = seeded.tokens["editor"]
    port = client.server.port
    assert port is not None
    async with TcpProxy("127.0.0.1", port) as proxy, YjsClients() as yjs:
        direct = str(client.make_url("/ws")).replace("http://", "ws://")
        assert (await yjs.connect("watcher", direct, seeded.doc_id, token, client_id=301)).synced
        faulty = f"ws://{proxy.address}/ws"
        assert (await yjs.connect("mover", faulty, seeded.doc_id, token, client_id=302)).synced
        await yjs.awareness_set_field("mover", "cursor", 1)
        await yjs.wait_awareness("watcher", 302, state={"cursor": 1, "user": editor})
        await proxy.set_mode(ProxyMode.RESET)
        await yjs.wait_awareness("watcher", 302, present=False)
        await proxy.set_mode(ProxyMode.PASS)
        await yjs.wait_synced("mover", within=15)
        # The watcher took the removal at the mover's clock: the mover's next
        # change has a higher one, so the watcher applies it.
        await yjs.awareness_set_field("mover", "cursor", 2)
        await yjs.wait_awareness("watcher", 302, state={"cursor": 2, "user": editor}, within=5)
