"""Merging a fork back into its source, and the source's news into the fork."""

from __future__ import annotations

from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.verify import verify_log
from tests.conftest import Client
from tests.history.helpers import call, expect_error
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, add_document, ws_path


async def edit(client: Client, seeded: Seeded, doc_id: str, index: int, insert: str) -> None:
    path = f"/api/documents/{doc_id}/edits"
    await call(client, "POST", path, seeded, json={"edits": [{"index": index, "insert": insert}]})


async def text(client: Client, seeded: Seeded, doc_id: str) -> str:
    content = await call(client, "GET", f"/api/documents/{doc_id}/content", seeded)
    result: str = content["text"]
    return result


async def fork(client: Client, seeded: Seeded) -> str:
    created = await call(
        client,
        "POST",
        f"/api/documents/{seeded.doc_id}/fork",
        seeded,
        status=201,
        json={"name": "fork.py"},
    )
    fork_id: str = created["id"]
    return fork_id


async def test_a_fork_merges_back_with_concurrent_edits(client: Client, seeded: Seeded) -> None:
    main = seeded.doc_id
    await edit(client, seeded, main, 0, "line one\nline two\n")
    branch = await fork(client, seeded)
    await edit(client, seeded, branch, 9, "fork: ")  # line one\nfork: line two\n
    await edit(client, seeded, main, 0, "# main\n")  # concurrently on the source
    async with connect(client, ws_path(seeded, "viewer"), client_id=5) as viewer:
        path = f"/api/documents/{main}/merge"
        merged = await call(
            client, "POST", path, seeded, "editor", json={"from_document_id": branch}
        )
        assert merged == {"seq": 3, "merged_events": 1}
        await viewer.wait_text("# main\nline one\nfork: line two\n")
    # Nothing new: no event.
    again = await call(client, "POST", path, seeded, json={"from_document_id": branch})
    assert again == {"seq": None, "merged_events": 0}
    # Only what is newer comes next time.
    await edit(client, seeded, branch, 4, "!")  # not at a spot the source also edited
    third = await call(
        client, "POST", path, seeded, json={"from_document_id": branch, "source": "tool:sync"}
    )
    assert third == {"seq": 4, "merged_events": 1}
    assert await text(client, seeded, main) == "# main\nline! one\nfork: line two\n"
    # And the other way: the source's news reach the fork.
    back = await call(
        client, "POST", f"/api/documents/{branch}/merge", seeded, json={"from_document_id": main}
    )
    assert back["merged_events"] == 3
    assert await text(client, seeded, branch) == "# main\nline! one\nfork: line two\n"
    log = EventLog(client.app[DATABASE])
    events = await log.read(main)
    assert events[-1].kind == "merge"
    assert events[-1].meta == {"from_document_id": branch, "through_seq": 3, "since_seq": 2}
    assert events[-1].source == "tool:sync"
    assert (await verify_log(log, main)).ok
    fork_history = await call(client, "GET", f"/api/documents/{branch}/history", seeded)
    first = fork_history["items"][0]
    assert (first["kind"], first["meta"]["source_doc_id"]) == ("fork", main)


async def test_merge_rules(client: Client, seeded: Seeded) -> None:
    path = f"/api/documents/{seeded.doc_id}/merge"
    unrelated = await add_document(client.app, seeded.project_id)
    await expect_error(client, "POST", path, seeded, 422, json={"from_document_id": unrelated})
    await expect_error(client, "POST", path, seeded, 422, json={"from_document_id": seeded.doc_id})
    await expect_error(client, "POST", path, seeded, 404, json={"from_document_id": "nope"})
    for bad in (
        {},
        {"from_document_id": ""},
        {"from_document_id": 5},
        {"x": 1},
        {"from_document_id": "x", "source": "Not Valid"},
    ):
        await expect_error(client, "POST", path, seeded, 422, json=bad)
    branch = await fork(client, seeded)
    body = {"from_document_id": branch}
    await expect_error(client, "POST", path, seeded, 403, json=body, who="viewer")
    await expect_error(client, "POST", path, seeded, 404, json=body, who="stranger")
    assert (await client.post(path, json=body)).status == 401
