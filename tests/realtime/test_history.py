"""History, blame, restore, fork and the change feed, through HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from pycrdt import Doc, Text

from collab.realtime.keys import ROOMS
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.verify import verify_log
from tests.conftest import Client
from tests.realtime.pyclient import PyClient, connect
from tests.realtime.seed import Seeded, bearer, ws_path


async def type_slowly(client: PyClient, words: list[str]) -> None:
    for word in words:
        client.text += word
        await asyncio.sleep(0.02)


async def get_json(client: Client, path: str, seeded: Seeded, who: str = "owner") -> Any:
    response = await client.get(path, headers=bearer(seeded, who))
    assert response.status == 200, await response.text()
    return await response.json()


async def test_history_pages_through_the_log(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        await type_slowly(editor, ["a", "b", "c", "d", "e"])
        room = client.app[ROOMS].get(seeded.doc_id)
        async with asyncio.timeout(5):
            while room is not None and room.seq < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    base = f"/api/documents/{seeded.doc_id}/history"
    first = await get_json(client, f"{base}?limit=2", seeded, "viewer")
    assert [item["seq"] for item in first["items"]] == [1, 2]
    assert first["next_after"] == 2
    item = first["items"][0]
    assert item["kind"] == "update"
    assert item["author_id"] == seeded.users["editor"].id
    assert item["author_name"] == "Editor"
    assert item["node_id"] == "test-node"
    assert item["size"] > 0
    assert item["created_at"].endswith("Z")
    last = await get_json(client, f"{base}?after=4&limit=2", seeded)
    assert [i["seq"] for i in last["items"]] == [5]
    assert last["next_after"] is None
    for bad in ("limit=0", "limit=1001", "after=-1", "limit=x"):
        assert (await client.get(f"{base}?{bad}", headers=bearer(seeded, "owner"))).status == 422
    assert (await client.get(base, headers=bearer(seeded, "stranger"))).status == 404


async def test_blame_attributes_each_character(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as owner,
        connect(client, ws_path(seeded, "editor"), client_id=2) as editor,
    ):
        owner.text += "héllo "
        await editor.wait_text("héllo ")
        editor.text += "😀 world"
        await owner.wait_text("héllo 😀 world")
    blame = await get_json(client, f"/api/documents/{seeded.doc_id}/blame", seeded, "viewer")
    assert blame["text"] == "héllo 😀 world"
    assert blame["seq"] == 2
    spans = [(s["start"], s["end"], s["author_name"], s["seq"]) for s in blame["spans"]]
    # Positions are UTF-16 code units: the emoji counts 2.
    assert spans == [(0, 6, "Owner", 1), (6, 14, "Editor", 2)]


async def test_restore_appends_an_event_clients_see_live(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as owner,
        connect(client, ws_path(seeded, "viewer"), client_id=3) as viewer,
    ):
        await type_slowly(owner, ["one", " two", " three 😀"])
        await viewer.wait_text("one two three 😀")
        response = await client.post(
            f"/api/documents/{seeded.doc_id}/restore",
            json={"seq": 1},
            headers=bearer(seeded, "editor"),
        )
        assert response.status == 200
        assert await response.json() == {"seq": 4}
        await viewer.wait_text("one")
        await owner.wait_text("one")
    log = EventLog(client.app[DATABASE])
    events = await log.read(seeded.doc_id)
    assert [e.kind for e in events] == ["update", "update", "update", "restore"]
    assert events[-1].author_id == seeded.users["editor"].id
    assert (await verify_log(log, seeded.doc_id)).ok
    content = await get_json(client, f"/api/documents/{seeded.doc_id}/content", seeded)
    assert content == {"doc_id": seeded.doc_id, "seq": 4, "text": "one"}


async def test_restore_rules(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/restore"
    viewer = await client.post(path, json={"seq": 0}, headers=bearer(seeded, "viewer"))
    assert viewer.status == 403
    past = await client.post(path, json={"seq": 99}, headers=bearer(seeded, "owner"))
    assert past.status == 422  # out of range: the answer names the valid range
    assert (await past.json())["error"]["details"]["valid_range"][0] == 0
    empty = await client.post(path, json={"seq": 0}, headers=bearer(seeded, "owner"))
    assert await empty.json() == {"seq": 1}  # still an event in the history
    assert client.app[ROOMS].get(seeded.doc_id) is not None  # borrowed, unloaded later


async def test_fork_starts_a_new_log_with_one_fork_event(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as owner:
        await type_slowly(owner, ["alpha", " beta"])
    response = await client.post(
        f"/api/documents/{seeded.doc_id}/fork",
        json={"name": "copy.py", "seq": 1},
        headers=bearer(seeded, "editor"),
    )
    assert response.status == 201
    fork = await response.json()
    assert fork["name"] == "copy.py"
    assert fork["project_id"] == seeded.project_id
    assert fork["head_seq"] == 1
    [event] = await EventLog(client.app[DATABASE]).read(fork["id"])
    assert event.kind == "fork"
    assert event.meta == {"source_doc_id": seeded.doc_id, "source_seq": 1}
    content = await get_json(client, f"/api/documents/{fork['id']}/content", seeded)
    assert content["text"] == "alpha"
    viewer = await client.post(
        f"/api/documents/{seeded.doc_id}/fork", json={"name": "x"}, headers=bearer(seeded, "viewer")
    )
    assert viewer.status == 403


async def read_events(response: Any, count: int) -> list[tuple[int, dict[str, Any]]]:
    """Parse ``count`` SSE messages from a streaming response."""
    events: list[tuple[int, dict[str, Any]]] = []
    block: dict[str, str] = {}
    async with asyncio.timeout(5):
        while len(events) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith(("id:", "data:")):
                key, _, value = line.partition(": ")
                block[key] = value
            elif not line and "data" in block:
                events.append((int(block["id"]), json.loads(block["data"])))
                block = {}
    return events


async def test_change_feed_replays_then_follows_live(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as owner:
        await type_slowly(owner, ["x", "y"])
        path = f"/api/documents/{seeded.doc_id}/changes?after=0"
        async with client.get(path, headers=bearer(seeded, "viewer")) as feed:
            assert feed.status == 200
            assert feed.headers["Content-Type"].startswith("text/event-stream")
            replayed = await read_events(feed, 2)
            assert [seq for seq, _ in replayed] == [1, 2]
            data = replayed[1][1]
            assert set(data) == {"seq", "kind", "author_id", "node_id", "created_at", "update_b64"}
            owner.text += "z"
            [(live_seq, live)] = await read_events(feed, 1)
            assert live_seq == 3
            doc: Doc[Any] = Doc()
            for update in [d["update_b64"] for _, d in replayed] + [live["update_b64"]]:
                doc.apply_update(base64.b64decode(update))
        resume_headers = {**bearer(seeded, "viewer"), "Last-Event-ID": "2"}
        async with client.get(
            f"/api/documents/{seeded.doc_id}/changes", headers=resume_headers
        ) as again:
            [(resumed, _)] = await read_events(again, 1)
            assert resumed == 3
    assert str(doc.get("content", type=Text)) == "xyz"
    stranger = await client.get(
        f"/api/documents/{seeded.doc_id}/changes", headers=bearer(seeded, "stranger")
    )
    assert stranger.status == 404
