"""Presence changes arriving together go out together, and every client still sees everyone.

A document sends at most one presence message per ``PRESENCE_INTERVAL``, so N
clients announcing themselves at once cost each client a frame or two, not N
frames (N² for the document).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from collab.realtime.presence import Identity, Presence
from collab.realtime.presence_outbox import PresenceOutbox
from collab.realtime.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    RawAwarenessEntry,
    decode_awareness,
    decode_message,
)
from tests.conftest import Client
from tests.realtime.pyclient import PyClient, connect
from tests.realtime.seed import Seeded, ws_path
from tests.support.yjs import YjsClients, node_available

JOINING = 20


def _awareness_frames(client: PyClient, since: int) -> list[list[AwarenessEntry]]:
    """The awareness messages ``client`` received after its first ``since`` frames."""
    return [
        decode_awareness(message.payload)
        for data in client.received[since:]
        if isinstance(message := decode_message(data), AwarenessMessage)
    ]


async def test_presence_announced_at_once_reaches_everyone_in_few_frames(
    client: Client, seeded: Seeded
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                connect(client, ws_path(seeded, "editor"), client_id=100 + i)
            )
            for i in range(JOINING)
        ]
        before = [len(c.received) for c in clients]
        await asyncio.gather(*(c.set_presence({"cursor": i}) for i, c in enumerate(clients)))
        everyone = {100 + i for i in range(JOINING)}
        for c in clients:
            await c.wait_for(lambda c=c: everyone <= c.presence.keys())
        frames = [_awareness_frames(c, since) for c, since in zip(clients, before, strict=True)]
    # One message per announcement would be JOINING frames per client (JOINING² in all);
    # announcements read in one turn of the server's loop go out as one message, and
    # any left over wait for the next one.
    assert sum(len(f) for f in frames) <= 2 * JOINING, [len(f) for f in frames]
    assert all(len(f) <= 2 for f in frames), [len(f) for f in frames]
    assert max(len(entries) for f in frames for entries in f) > 1  # merged, not one each


async def _turns(count: int = 5) -> None:
    """Let the event loop run a few turns (timers already due included)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_batch_keeps_the_newest_entry_of_each_client() -> None:
    batches: list[list[AwarenessEntry]] = []

    async def deliver(payload: bytes) -> None:
        batches.append(decode_awareness(payload))

    outbox = PresenceOutbox(deliver, lambda: 2, interval=3600.0)
    outbox.add([AwarenessEntry(1, 1, {"cursor": 1}), AwarenessEntry(2, 1, {"cursor": 5})])
    outbox.add([AwarenessEntry(1, 2, {"cursor": 2})])
    outbox.add([AwarenessEntry(2, 2, None)])
    await _turns()  # the first batch leaves once this turn is over
    assert batches == [[AwarenessEntry(1, 2, {"cursor": 2}), AwarenessEntry(2, 2, None)]]
    outbox.add([AwarenessEntry(1, 3, {"cursor": 3})])
    await _turns()
    assert len(batches) == 1  # the next one waits for the interval
    await outbox.flush()
    assert batches[1] == [AwarenessEntry(1, 3, {"cursor": 3})]


async def test_renewals_wait_and_go_along_with_the_next_change() -> None:
    batches: list[list[AwarenessEntry]] = []

    async def deliver(payload: bytes) -> None:
        batches.append(decode_awareness(payload))

    outbox = PresenceOutbox(deliver, lambda: 1000)  # a large document: renewals wait long
    outbox.add_renewals([AwarenessEntry(1, 2, {"cursor": 1})])
    await _turns()
    assert batches == []
    outbox.add([AwarenessEntry(2, 1, {"cursor": 2})])
    await _turns()
    assert batches == [[AwarenessEntry(2, 1, {"cursor": 2}), AwarenessEntry(1, 2, {"cursor": 1})]]


async def test_a_waiting_removal_is_not_replaced_by_an_older_state() -> None:
    """A late copy of a departed client's state must not cancel its removal."""
    batches: list[list[AwarenessEntry]] = []

    async def deliver(payload: bytes) -> None:
        batches.append(decode_awareness(payload))

    outbox = PresenceOutbox(deliver, lambda: 2)
    outbox.add([AwarenessEntry(7, 5, None)])
    outbox.add([AwarenessEntry(7, 4, {"cursor": 1})])
    outbox.add_renewals([AwarenessEntry(7, 4, {"cursor": 1})])
    await _turns()
    assert batches == [[AwarenessEntry(7, 5, None)]]


def test_the_same_state_again_is_a_renewal() -> None:
    presence = Presence()
    ann = Identity("peer-1", "user-1", "Ann")
    first = presence.accept(ann, [RawAwarenessEntry(1, 1, b'{"cursor":1}')])
    assert len(first.changes) == 1 and first.renewals == []
    stamped = first.changes[0].state
    again = presence.accept(ann, [RawAwarenessEntry(1, 2, b'{"cursor":1}')])
    assert again.changes == [] and again.renewals == [AwarenessEntry(1, 2, stamped)]
    moved = presence.accept(ann, [RawAwarenessEntry(1, 3, b'{"cursor":2}')])
    assert len(moved.changes) == 1 and moved.renewals == []
    # Someone else's copy of it is neither.
    bob = Identity("peer-2", "user-2", "Bob")
    copy = presence.accept(bob, [RawAwarenessEntry(1, 4, b'{"cursor":2}')])
    assert copy.changes == [] and copy.renewals == []


@pytest.mark.node
@pytest.mark.skipif(
    not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
)
@pytest.mark.timeout(120)
async def test_stock_clients_joining_at_once_each_see_all_the_others(
    client: Client, seeded: Seeded
) -> None:
    base = str(client.make_url("/ws")).replace("http://", "ws://")
    names = [f"joiner{i}" for i in range(JOINING)]
    async with YjsClients() as yjs:
        results = await asyncio.gather(
            *(
                yjs.connect(name, base, seeded.doc_id, seeded.tokens["editor"], client_id=200 + i)
                for i, name in enumerate(names)
            )
        )
        assert all(r.synced for r in results), results
        # A state's first clock is 0, which other stock clients ignore: announce a cursor.
        await asyncio.gather(
            *(yjs.awareness_set(name, {"cursor": i}) for i, name in enumerate(names))
        )
        editor = {"id": seeded.users["editor"].id, "name": "Editor"}
        for i, name in enumerate(names):
            for j in range(JOINING):
                if j != i:
                    await yjs.wait_awareness(
                        name, 200 + j, state={"cursor": j, "user": editor}, within=10
                    )
