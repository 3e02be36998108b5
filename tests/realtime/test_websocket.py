"""The y-websocket endpoint with pycrdt clients: sync, roles, presence, persistence."""

from __future__ import annotations

import asyncio
import uuid

from auth.keys import TOKEN_SIGNER
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from tests.conftest import Client
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, ws_path


async def test_update_reaches_second_client_and_the_log(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
    ):
        a.text += "hello"
        await b.wait_text("hello")
        b.text.insert(5, " world")
        await a.wait_text("hello world")
    seq, text = await document_text(client.app[DATABASE], seeded.doc_id)
    assert (seq, text) == (2, "hello world")
    events = await EventLog(client.app[DATABASE]).read(seeded.doc_id)
    assert [e.author_id for e in events] == [seeded.users["owner"].id, seeded.users["editor"].id]
    assert all(e.node_id == "test-node" and e.kind == "update" for e in events)


async def test_late_joiner_gets_the_whole_text(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as a:
        a.text += "abc"
        await asyncio.sleep(0.05)
        async with connect(client, ws_path(seeded, "viewer"), client_id=2) as late:
            assert str(late.text) == "abc"


async def test_viewer_updates_are_dropped(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "viewer"), client_id=3) as viewer,
        connect(client, ws_path(seeded, "editor"), client_id=2) as editor,
    ):
        viewer.text += "spam"
        editor.text += "ok"
        await editor.wait_text("ok")
        await asyncio.sleep(0.1)
        assert str(editor.text) == "ok"
    _, text = await document_text(client.app[DATABASE], seeded.doc_id)
    assert text == "ok"


async def test_reconnect_without_edits_appends_nothing(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as a:
        a.text += "x"
        await asyncio.sleep(0.05)
    log = EventLog(client.app[DATABASE])
    assert (await log.head(seeded.doc_id)).seq == 1
    for _ in range(50):
        async with connect(client, ws_path(seeded, "owner"), client_id=1) as again:
            assert str(again.text) == "x"  # same client id: nothing new to send
    assert (await log.head(seeded.doc_id)).seq == 1


async def test_token_and_document_are_checked(client: Client, seeded: Seeded) -> None:
    # A valid signature naming an account that does not (or no longer) exist.
    ghost = client.app[TOKEN_SIGNER].issue_access(str(uuid.uuid4()))
    cases = {
        f"/ws/{seeded.doc_id}": 4401,
        f"/ws/{seeded.doc_id}?token=garbage": 4401,
        f"/ws/{seeded.doc_id}?token={ghost}": 4401,
        f"/ws/unknown-doc?token={ghost}": 4401,
        ws_path(seeded, "stranger"): 4404,
        f"/ws/unknown-doc?token={seeded.tokens['owner']}": 4404,
    }
    for path, code in cases.items():
        async with connect(client, path, client_id=9, sync=False) as c:
            assert await c.wait_closed() == code, path


async def test_presence_is_relayed_stamped_and_removed(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as b:
        await b.set_presence({"cursor": 0})
        async with connect(client, ws_path(seeded, "owner"), client_id=1) as a:
            await a.wait_for(lambda: 2 in a.presence)
            await a.set_presence({"cursor": 3, "user": {"name": "Mallory", "color": "red"}})
            await b.wait_for(lambda: 1 in b.presence)
            assert b.presence[1] == {
                "cursor": 3,
                "user": {"name": "Owner", "color": "red", "id": seeded.users["owner"].id},
            }
            # a may not speak for b's client id
            await a.ws.send_bytes(_presence_of(2, {"cursor": 99}))
            await a.set_presence({"cursor": 4}, clock=2)
            await b.wait_for(lambda: (b.presence.get(1) or {}).get("cursor") == 4)
            async with connect(client, ws_path(seeded, "viewer"), client_id=3) as c:
                await c.wait_for(lambda: 2 in c.presence)
                editor = {"id": seeded.users["editor"].id, "name": "Editor"}
                assert c.presence[2] == {"cursor": 0, "user": editor}
        await b.wait_for(lambda: b.presence.get(1, "gone") is None)


def _presence_of(client_id: int, state: dict[str, object]) -> bytes:
    from collab.realtime.protocol import AwarenessEntry, awareness_message, encode_awareness

    return awareness_message(encode_awareness([AwarenessEntry(client_id, 5, state)]))
