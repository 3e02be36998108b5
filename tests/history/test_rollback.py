"""Rolling back one author's (or one source's) events while everything else stays."""

from __future__ import annotations

import os
from typing import Any

import pytest

from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.verify import verify_log
from tests.conftest import Client
from tests.history.helpers import call, expect_error, head, wait_head
from tests.realtime.seed import Seeded
from tests.support.yjs import YjsClients, node_available


def ws_base(client: Client) -> str:
    return str(client.make_url("/ws")).replace("http://", "ws://")


@pytest.mark.node
@pytest.mark.timeout(90)
@pytest.mark.skipif(
    not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
)
async def test_rolling_back_one_author_leaves_the_others_text(
    client: Client, seeded: Seeded
) -> None:
    async with YjsClients() as yjs:
        for cid, who in (("o", "owner"), ("e", "editor")):
            result = await yjs.connect(cid, ws_base(client), seeded.doc_id, seeded.tokens[who])
            assert result.synced, result
        steps: list[tuple[str, str, int, str | int]] = [
            ("o", "insert", 0, "hello world"),
            ("e", "insert", 5, " big"),  # hello big world
            ("o", "insert", 15, "!"),  # hello big world!
            ("e", "delete", 0, 1),  # ello big world!
            ("o", "insert", 0, "> "),  # > ello big world!
            ("e", "insert", 17, " 😀"),  # > ello big world! 😀
            ("o", "delete", 6, 4),  # > ello world! 😀  (owner removes " big")
        ]
        for number, (cid, op, pos, arg) in enumerate(steps, start=1):
            if op == "insert":
                await yjs.insert(cid, pos, str(arg))
            else:
                await yjs.delete(cid, pos, int(arg))
            await wait_head(client, seeded.doc_id, number)
            await yjs.wait_converged(["o", "e"])
        assert await yjs.text("o") == "> ello world! 😀"
        editor = seeded.users["editor"].id
        path = f"/api/documents/{seeded.doc_id}/rollback"
        result = await call(client, "POST", path, seeded, "owner", json={"by": [editor]})
        assert result == {"seq": 8, "undone_events": 3}
        # The owner's text, exactly as if the editor had never typed, reaches both live.
        await yjs.wait_text("o", "> hello world!")
        await yjs.wait_text("e", "> hello world!")
    log = EventLog(client.app[DATABASE])
    last = (await log.read(seeded.doc_id))[-1]
    assert (last.kind, last.author_id) == ("rollback", seeded.users["owner"].id)
    assert (await verify_log(log, seeded.doc_id)).ok
    content = await call(client, "GET", f"/api/documents/{seeded.doc_id}/content", seeded)
    assert content["text"] == "> hello world!"


async def test_rollback_by_source_and_seq_range(client: Client, seeded: Seeded) -> None:
    doc = f"/api/documents/{seeded.doc_id}"
    await call(
        client, "POST", f"{doc}/edits", seeded, json={"edits": [{"index": 0, "insert": "ab"}]}
    )
    await call(
        client,
        "POST",
        f"{doc}/edits",
        seeded,
        "editor",
        json={"edits": [{"index": 1, "insert": "XY"}], "source": "ai:bot"},
    )
    await call(
        client, "POST", f"{doc}/edits", seeded, json={"edits": [{"index": 4, "insert": "c"}]}
    )
    assert (await call(client, "GET", f"{doc}/content", seeded))["text"] == "aXYbc"
    undo = await call(
        client, "POST", f"{doc}/rollback", seeded, "editor", json={"source": "ai:bot"}
    )
    assert undo == {"seq": 4, "undone_events": 1}
    assert (await call(client, "GET", f"{doc}/content", seeded))["text"] == "abc"
    again = await call(
        client, "POST", f"{doc}/rollback", seeded, json={"after_seq": 2, "through_seq": 3}
    )
    assert again["undone_events"] == 1
    assert (await call(client, "GET", f"{doc}/content", seeded))["text"] == "ab"
    # Rolling back the rollback brings its removals back.
    back = await call(
        client, "POST", f"{doc}/rollback", seeded, json={"after_seq": 3, "through_seq": 4}
    )
    assert back["undone_events"] == 1
    assert (await call(client, "GET", f"{doc}/content", seeded))["text"] == "aXYb"


async def test_rollback_rules(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/rollback"
    await expect_error(client, "POST", path, seeded, 422, json={})
    await expect_error(client, "POST", path, seeded, 422, json={"by": ["nobody"]})  # no match
    await expect_error(client, "POST", path, seeded, 422, json={"through_seq": 5})
    bad: Any
    for bad in (
        {"by": []},
        {"by": "x"},
        {"source": "Bad Source"},
        {"after_seq": -1},
        {"from": "not a time"},
        {"by": ["x"] * 51},
        [1, 2],
    ):
        await expect_error(client, "POST", path, seeded, 422, json=bad)
    await expect_error(client, "POST", path, seeded, 400, data=b"{nope")
    await expect_error(client, "POST", path, seeded, 403, json={"through_seq": 0}, who="viewer")
    await expect_error(client, "POST", path, seeded, 404, json={"through_seq": 0}, who="stranger")
    assert (await client.post(path, json={"through_seq": 0})).status == 401
    assert await head(client, seeded.doc_id) == 0
