"""Source labels on events, and seqs out of range."""

from __future__ import annotations

from tests.conftest import Client
from tests.history.helpers import call, expect_error, type_in
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, ws_path


async def test_a_websocket_source_is_stored_and_shown(client: Client, seeded: Seeded) -> None:
    path = ws_path(seeded, "editor") + "&source=ai:assistant"
    async with (
        connect(client, path, client_id=2) as agent,
        connect(client, ws_path(seeded, "owner"), client_id=1) as owner,
    ):
        await type_in(client, seeded, owner, ["human "])
        await agent.wait_text("human ")
        await type_in(client, seeded, agent, ["bot"])
    doc = f"/api/documents/{seeded.doc_id}"
    history = await call(client, "GET", f"{doc}/history", seeded, "viewer")
    assert [(i["author_name"], i["source"]) for i in history["items"]] == [
        ("Owner", None),
        ("Editor", "ai:assistant"),
    ]
    blame = await call(client, "GET", f"{doc}/blame", seeded, "viewer")
    assert [(s["start"], s["end"], s["source"]) for s in blame["spans"]] == [
        (0, 6, None),
        (6, 9, "ai:assistant"),
    ]


async def test_an_invalid_source_closes_with_4400(client: Client, seeded: Seeded) -> None:
    for bad in ("AI", "x" * 65, "a b", "", "ai%2Fbot", "%C3%A9"):
        ws = await client.ws_connect(ws_path(seeded, "editor") + f"&source={bad}")
        await ws.receive()
        assert ws.close_code == 4400, bad
        await ws.close()


async def test_at_past_the_head_is_422_naming_the_range(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as owner:
        await type_in(client, seeded, owner, ["a", "b"])
    doc = f"/api/documents/{seeded.doc_id}"
    for route in ("content", "state"):
        error = await expect_error(client, "GET", f"{doc}/{route}?at=99999", seeded, 422)
        assert "0 to 2" in error["message"]
        assert error["details"]["valid_range"] == [0, 2]
    assert (await call(client, "GET", f"{doc}/content?at=1", seeded))["text"] == "a"
    assert (await call(client, "GET", f"{doc}/content?at=0", seeded))["text"] == ""
    await expect_error(client, "GET", f"{doc}/content?at=-1", seeded, 422)


async def test_huge_numbers_are_422_not_500(client: Client, seeded: Seeded) -> None:
    doc = f"/api/documents/{seeded.doc_id}"
    huge = "99999999999999999999999"
    for path in (
        f"{doc}/history?after={huge}",
        f"{doc}/content?at={huge}",
        f"{doc}/state?at={huge}",
        f"{doc}/activity?through_seq={huge}",
        f"{doc}/changeset?from_seq={huge}",
    ):
        await expect_error(client, "GET", path, seeded, 422)
    assert (await client.get(f"{doc}/changeset")).status == 401


async def test_restore_takes_a_source(client: Client, seeded: Seeded) -> None:
    doc = f"/api/documents/{seeded.doc_id}"
    await call(
        client, "POST", f"{doc}/edits", seeded, json={"edits": [{"index": 0, "insert": "x"}]}
    )
    restored = await call(
        client, "POST", f"{doc}/restore", seeded, json={"seq": 0, "source": "ai:undo"}
    )
    history = await call(client, "GET", f"{doc}/history?after=1", seeded)
    assert [(i["seq"], i["kind"], i["source"]) for i in history["items"]] == [
        (restored["seq"], "restore", "ai:undo")
    ]
    await expect_error(
        client, "POST", f"{doc}/restore", seeded, 422, json={"seq": 0, "source": "?"}
    )
