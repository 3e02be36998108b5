"""Soft delete: the trash, undelete with the whole log, the purge, project deletion."""

from __future__ import annotations

import time

from collab.api.trash import purge_trash
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.history.helpers import call, expect_error
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, bearer, ws_path


async def write(client: Client, seeded: Seeded, words: list[str]) -> None:
    path = f"/api/documents/{seeded.doc_id}/edits"
    for word in words:
        await call(client, "POST", path, seeded, json={"edits": [{"index": 0, "insert": word}]})


async def test_delete_trash_and_undelete_keep_the_whole_log(client: Client, seeded: Seeded) -> None:
    await write(client, seeded, ["c", "b", "a"])
    doc = f"/api/documents/{seeded.doc_id}"
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        response = await client.delete(doc, headers=bearer(seeded, "owner"))
        assert response.status == 204
        assert await editor.wait_closed() == 4404
    await expect_error(client, "GET", f"{doc}/content", seeded, 404)
    trash = await call(client, "GET", f"/api/projects/{seeded.project_id}/trash", seeded, "viewer")
    [item] = trash["items"]
    assert (item["id"], item["head_seq"], item["deleted_by"]) == (
        seeded.doc_id,
        3,
        seeded.users["owner"].id,
    )
    assert item["deleted_at"].endswith("Z") and item["name"] == "main.py"
    back = await call(client, "POST", f"{doc}/undelete", seeded)
    assert (back["id"], back["head_seq"]) == (seeded.doc_id, 3)
    assert (await call(client, "GET", f"{doc}/content", seeded))["text"] == "abc"
    history = await call(client, "GET", f"{doc}/history", seeded)
    assert [i["seq"] for i in history["items"]] == [1, 2, 3]
    empty = await call(client, "GET", f"/api/projects/{seeded.project_id}/trash", seeded)
    assert empty["items"] == []


async def test_trash_rules(client: Client, seeded: Seeded) -> None:
    doc = f"/api/documents/{seeded.doc_id}"
    trash = f"/api/projects/{seeded.project_id}/trash"
    await expect_error(client, "DELETE", doc, seeded, 403, who="editor")
    await expect_error(client, "POST", f"{doc}/undelete", seeded, 404)  # not deleted
    assert (await client.delete(doc, headers=bearer(seeded, "owner"))).status == 204
    await expect_error(client, "POST", f"{doc}/undelete", seeded, 403, who="editor")
    await expect_error(client, "POST", f"{doc}/undelete", seeded, 404, who="stranger")
    await expect_error(client, "GET", trash, seeded, 404, who="stranger")
    await expect_error(client, "POST", "/api/documents/nope/undelete", seeded, 404)
    assert (await client.get(trash)).status == 401
    assert (await client.post(f"{doc}/undelete")).status == 401


async def test_the_purge_removes_expired_documents_and_their_logs(
    client: Client, seeded: Seeded
) -> None:
    await write(client, seeded, ["x"])
    db = client.app[DATABASE]
    # Enough events for a packed block as well as the tail.
    await EventLog(db).append(seeded.doc_id, [NewEvent("update", b"\x00\x00", None, "n")] * 300)
    assert (
        await client.delete(f"/api/documents/{seeded.doc_id}", headers=bearer(seeded, "owner"))
    ).status == 204
    assert await purge_trash(db, time.time() - 3600) == []  # deleted just now: kept
    assert (await EventLog(db).head(seeded.doc_id)).seq == 301
    assert await purge_trash(db, time.time() + 1) == [seeded.doc_id]
    assert await db.fetchval("SELECT count(*) FROM doc_heads WHERE doc_id = $1", seeded.doc_id) == 0
    for table in ("doc_events", "doc_event_blocks"):
        left = f"SELECT count(*) FROM {table} WHERE doc_id = $1"  # noqa: S608
        assert await db.fetchval(left, seeded.doc_id) == 0
    await expect_error(client, "POST", f"/api/documents/{seeded.doc_id}/undelete", seeded, 404)


async def test_deleting_the_project_removes_trashed_documents(
    client: Client, seeded: Seeded
) -> None:
    await write(client, seeded, ["x"])
    db = client.app[DATABASE]
    assert (
        await client.delete(f"/api/documents/{seeded.doc_id}", headers=bearer(seeded, "owner"))
    ).status == 204
    response = await client.delete(
        f"/api/projects/{seeded.project_id}", headers=bearer(seeded, "owner")
    )
    assert response.status == 204
    assert await db.fetchval("SELECT count(*) FROM doc_trash") == 0
    assert await db.fetchval("SELECT count(*) FROM doc_heads WHERE doc_id = $1", seeded.doc_id) == 0
