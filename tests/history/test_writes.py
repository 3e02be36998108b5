"""Writing over REST: text splices (now or at a base seq) and raw Yjs updates."""

from __future__ import annotations

import io
import json
from typing import Any

from pycrdt import Doc, Text

from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.history.helpers import call, expect_error, head
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, bearer, ws_path


async def text(client: Client, seeded: Seeded) -> str:
    content = await call(client, "GET", f"/api/documents/{seeded.doc_id}/content", seeded)
    result: str = content["text"]
    return result


async def test_edits_reach_connected_clients_as_the_caller(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/edits"
    async with connect(client, ws_path(seeded, "viewer"), client_id=3) as viewer:
        first = await call(
            client,
            "POST",
            path,
            seeded,
            "editor",
            json={"edits": [{"index": 0, "insert": "a😀c"}], "source": "ai:bot"},
        )
        assert first == {"seq": 1}
        # UTF-16 positions: the emoji is 2 units, so "c" starts at 3.
        second = await call(
            client, "POST", path, seeded, json={"edits": [{"index": 3, "delete": 1, "insert": "é"}]}
        )
        assert second == {"seq": 2}
        await viewer.wait_text("a😀é")
    events = await EventLog(client.app[DATABASE]).read(seeded.doc_id)
    assert [(e.kind, e.source) for e in events] == [("edit", "ai:bot"), ("edit", None)]
    assert events[0].author_id == seeded.users["editor"].id
    nothing = await call(client, "POST", path, seeded, json={"edits": [{"index": 0}]})
    assert nothing == {"seq": None}


async def test_edits_at_a_base_seq_merge_with_later_ones(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/edits"
    await call(client, "POST", path, seeded, json={"edits": [{"index": 0, "insert": "one two"}]})
    await call(client, "POST", path, seeded, json={"edits": [{"index": 0, "insert": "zero "}]})
    assert await text(client, seeded) == "zero one two"
    # Positions refer to "one two" (seq 1): replace "two" by "2".
    late = {"edits": [{"index": 4, "delete": 3, "insert": "2"}], "base_seq": 1}
    assert await call(client, "POST", path, seeded, json=late) == {"seq": 3}
    assert await text(client, seeded) == "zero one 2"


async def test_edits_reject_bad_input(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/edits"
    await call(client, "POST", path, seeded, json={"edits": [{"index": 0, "insert": "😀"}]})
    bad: Any
    for bad in (
        {},
        {"edits": []},
        {"edits": [{"index": 5}]},  # past the end
        {"edits": [{"index": 1}]},  # inside the surrogate pair
        {"edits": [{"index": 0, "delete": 3}]},
        {"edits": [{"index": -1}]},
        {"edits": [{"index": 0, "insert": "\x00"}]},
        {"edits": [{"index": 0, "insert": 5}]},
        {"edits": [{"index": 0}] * 1001},
        {"edits": [{"index": 0}], "base_seq": 9},
        {"edits": [{"index": 0}], "source": "NOT OK"},
        {"edits": "x"},
    ):
        await expect_error(client, "POST", path, seeded, 422, json=bad)
    edits = {"edits": [{"index": 0, "insert": "x"}]}
    await expect_error(client, "POST", path, seeded, 403, json=edits, who="viewer")
    await expect_error(client, "POST", path, seeded, 404, json=edits, who="stranger")
    huge = json.dumps({"edits": [{"index": 0, "insert": "x" * 2_000_000}]}).encode()
    await expect_error(
        client,
        "POST",
        path,
        seeded,
        413,
        data=io.BytesIO(huge),
        headers={"Content-Type": "application/json"},
    )
    assert await head(client, seeded.doc_id) == 1


def update_of(change: Any, base: bytes | None = None) -> bytes:
    doc: Doc[Any] = Doc(client_id=77)
    if base is not None:
        doc.apply_update(base)
    before = doc.get_state()
    change(doc.get("content", type=Text))
    return doc.get_update(before)


async def test_raw_updates_commit_like_a_client(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/updates"
    octets = {"Content-Type": "application/octet-stream"}
    update = update_of(lambda t: t.insert(0, "raw"))
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as owner:
        response = await client.post(
            f"{path}?source=tool:import",
            data=update,
            headers=bearer(seeded, "editor") | octets,
        )
        assert response.status == 200, await response.text()
        assert await response.json() == {"seq": 1}
        await owner.wait_text("raw")
    again = await client.post(path, data=update, headers=bearer(seeded, "editor") | octets)
    assert await again.json() == {"seq": None}  # already applied: nothing changes
    [event] = await EventLog(client.app[DATABASE]).read(seeded.doc_id)
    assert (event.kind, event.source) == ("update", "tool:import")


async def test_raw_updates_reject_bad_input(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/updates"
    octets = {"Content-Type": "application/octet-stream"}
    good = update_of(lambda t: t.insert(0, "x"))
    for data, status in (
        (b"", 422),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 422),
        (b"\x01\x05", 422),
        (good[:-3], 422),
    ):
        await expect_error(client, "POST", path, seeded, status, data=data, headers=octets)
    await expect_error(
        client, "POST", path, seeded, 400, data=good, headers={"Content-Type": "text/plain"}
    )
    await expect_error(
        client, "POST", f"{path}?source=BAD!", seeded, 422, data=good, headers=octets
    )
    await expect_error(
        client, "POST", path, seeded, 413, data=io.BytesIO(b"\x00" * 2_000_000), headers=octets
    )
    await expect_error(client, "POST", path, seeded, 403, data=good, headers=octets, who="viewer")
    await expect_error(client, "POST", path, seeded, 404, data=good, headers=octets, who="stranger")
    assert (await client.post(path, data=good, headers=octets)).status == 401
    assert await head(client, seeded.doc_id) == 0
