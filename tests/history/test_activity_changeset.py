"""Editing sessions and changesets over HTTP."""

from __future__ import annotations

from tests.conftest import Client
from tests.history.helpers import call, expect_error, type_in, wait_head
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, bearer, ws_path


async def write_some(client: Client, seeded: Seeded) -> None:
    """owner: "héllo " (seq 1), editor+ai: "😀 wörld" (2), owner deletes "h" (3)."""
    agent_path = ws_path(seeded, "editor") + "&source=ai:bot"
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as owner,
        connect(client, agent_path, client_id=2) as agent,
    ):
        await type_in(client, seeded, owner, ["héllo "])
        await agent.wait_text("héllo ")
        await type_in(client, seeded, agent, ["😀 wörld"])
        await owner.wait_text("héllo 😀 wörld")
        del owner.text[0:1]
        await wait_head(client, seeded.doc_id, 3)


async def test_activity_groups_events_into_sessions(client: Client, seeded: Seeded) -> None:
    await write_some(client, seeded)
    path = f"/api/documents/{seeded.doc_id}/activity"
    one = await call(client, "GET", f"{path}?gap_ms=604800000", seeded, "viewer")
    [session] = one["items"]
    assert (session["from_seq"], session["to_seq"]) == (1, 3)
    assert session["inserted"] == 6 + 8  # UTF-16: the emoji counts 2
    assert session["deleted"] == 1
    assert [a["display_name"] for a in session["authors"]] == ["Owner", "Editor"]
    assert session["sources"] == ["ai:bot"]
    assert session["from_time"].endswith("Z") and session["to_time"] >= session["from_time"]
    each = await call(client, "GET", f"{path}?gap_ms=0", seeded)
    assert [(s["from_seq"], s["to_seq"]) for s in each["items"]] == [(3, 3), (2, 2), (1, 1)]
    limited = await call(client, "GET", f"{path}?gap_ms=0&limit=1", seeded)
    assert [s["from_seq"] for s in limited["items"]] == [3]
    editor = seeded.users["editor"].id
    mine = await call(client, "GET", f"{path}?by={editor}&gap_ms=0", seeded)
    assert [(s["from_seq"], s["inserted"]) for s in mine["items"]] == [(2, 8)]
    window = await call(client, "GET", f"{path}?after_seq=1&through_seq=2&gap_ms=0", seeded)
    assert [s["from_seq"] for s in window["items"]] == [2]
    future = await call(client, "GET", f"{path}?from=2999-01-01T00:00:00Z", seeded)
    assert future["items"] == []


async def test_activity_rejects_bad_input(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/activity"
    for bad in (
        "gap_ms=-1",
        "limit=0",
        "limit=100000",
        "through_seq=5",
        "after_seq=x",
        "from=yesterday",
        "from=2025-01-01T00:00:00",  # no time zone
        "by=,,,",
        "by=" + ",".join(str(i) for i in range(60)),
    ):
        await expect_error(client, "GET", f"{path}?{bad}", seeded, 422)
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers=bearer(seeded, "stranger"))).status == 404


async def test_changeset_attributes_every_change(client: Client, seeded: Seeded) -> None:
    await write_some(client, seeded)
    path = f"/api/documents/{seeded.doc_id}/changeset"
    full = await call(client, "GET", f"{path}?from_seq=0&to_seq=3", seeded, "viewer")
    assert (full["from_seq"], full["to_seq"]) == (0, 3)
    runs = full["runs"]
    assert "".join(r["text"] for r in runs if r["op"] != "delete") == "éllo 😀 wörld"
    inserted = [(r["text"], r["author_name"], r["seq"], r["source"]) for r in runs]
    assert inserted == [("éllo ", "Owner", 1, None), ("😀 wörld", "Editor", 2, "ai:bot")]
    later = await call(client, "GET", f"{path}?from_seq=1&to_seq=3", seeded)
    assert [(r["op"], r["text"], r.get("seq")) for r in later["runs"]] == [
        ("delete", "h", 3),
        ("keep", "éllo ", None),
        ("insert", "😀 wörld", 2),
    ]
    assert later["runs"][0]["author_name"] == "Owner"
    default = await call(client, "GET", path, seeded)
    assert (default["from_seq"], default["to_seq"]) == (0, 3)
    by_time = await call(
        client, "GET", f"{path}?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z", seeded
    )
    assert (by_time["from_seq"], by_time["to_seq"]) == (0, 3)


async def test_changeset_rejects_bad_input(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/changeset"
    error = await expect_error(client, "GET", f"{path}?to_seq=99", seeded, 422)
    assert error["details"]["valid_range"] == [0, 0]
    for bad in ("from_seq=-1", "from_seq=0&from=2025-01-01T00:00:00Z", "to=not-a-time"):
        await expect_error(client, "GET", f"{path}?{bad}", seeded, 422)
    assert (await client.get(path, headers=bearer(seeded, "stranger"))).status == 404
