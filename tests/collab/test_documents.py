"""Document metadata through HTTP: create, list, read, update, delete (SQLite and Postgres)."""

from __future__ import annotations

import re

import pytest

from collab.realtime.access import AccessChanges
from eventstore.keys import DATABASE
from tests.auth.fixtures import Client, assert_error, create_document, create_team
from tests.auth.fixtures import cheap_passwords as cheap_passwords

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_create_document_with_its_log(client: Client) -> None:
    team = await create_team(client)
    response = await client.post(
        f"/api/projects/{team.project_id}/documents",
        json={"name": " notes ", "language": "text"},
        headers=team.editor.headers,
    )
    assert response.status == 201
    doc = await response.json()
    assert set(doc) == {
        "id",
        "project_id",
        "name",
        "language",
        "head_seq",
        "created_at",
        "updated_at",
    }
    assert (doc["project_id"], doc["name"], doc["language"], doc["head_seq"]) == (
        team.project_id,
        "notes",
        "text",
        0,
    )
    assert ISO_UTC.match(doc["created_at"])
    assert doc["created_at"] == doc["updated_at"]
    head = await client.app[DATABASE].fetchval(
        "SELECT seq FROM doc_heads WHERE doc_id = $1", doc["id"]
    )
    assert head == 0
    read = await client.get(f"/api/documents/{doc['id']}", headers=team.viewer.headers)
    assert await read.json() == doc


async def test_head_seq_comes_from_the_log(client: Client) -> None:
    team = await create_team(client)
    await client.app[DATABASE].execute(
        "UPDATE doc_heads SET seq = 42 WHERE doc_id = $1", team.doc_id
    )
    read = await client.get(f"/api/documents/{team.doc_id}", headers=team.viewer.headers)
    assert (await read.json())["head_seq"] == 42
    listing = await client.get(
        f"/api/projects/{team.project_id}/documents", headers=team.viewer.headers
    )
    assert (await listing.json())["items"][0]["head_seq"] == 42


async def test_list_is_in_name_order(client: Client) -> None:
    team = await create_team(client)
    for name in ("zeta.py", "alpha.py"):
        await create_document(client, team.editor, team.project_id, name)
    response = await client.get(
        f"/api/projects/{team.project_id}/documents", headers=team.viewer.headers
    )
    assert response.status == 200
    names = [doc["name"] for doc in (await response.json())["items"]]
    assert names == ["alpha.py", "main.py", "zeta.py"]


async def test_patch_changes_only_given_fields(client: Client) -> None:
    team = await create_team(client)
    url = f"/api/documents/{team.doc_id}"
    before = await (await client.get(url, headers=team.editor.headers)).json()
    response = await client.patch(url, json={"language": "javascript"}, headers=team.editor.headers)
    assert response.status == 200
    after = await response.json()
    assert (after["name"], after["language"]) == ("main.py", "javascript")
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]
    renamed = await client.patch(url, json={"name": "app.js"}, headers=team.editor.headers)
    assert (await renamed.json())["language"] == "javascript"
    unchanged = await client.patch(url, json={}, headers=team.editor.headers)
    assert await unchanged.json() == await renamed.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x.rs", "language": "rust"}, "language"),
        ({"name": "x.py"}, "language"),
        ({"language": "python"}, "name"),
        ({"name": "", "language": "python"}, "name"),
        ({"name": "x" * 201, "language": "python"}, "name"),
        ({"name": 7, "language": "python"}, "name"),
    ],
)
async def test_create_rejects_invalid_fields(
    client: Client, body: dict[str, object], field: str
) -> None:
    team = await create_team(client)
    response = await client.post(
        f"/api/projects/{team.project_id}/documents", json=body, headers=team.owner.headers
    )
    assert field in (await assert_error(response, 422, "validation_failed"))["details"]
    count = await client.app[DATABASE].fetchval("SELECT count(*) FROM documents")
    assert count == 1


async def test_delete_moves_the_document_to_the_trash(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[list[str]] = []

    async def record(self: AccessChanges, doc_ids: list[str]) -> None:
        deleted.append(doc_ids)

    monkeypatch.setattr(AccessChanges, "documents_deleted", record)
    team = await create_team(client)
    response = await client.delete(f"/api/documents/{team.doc_id}", headers=team.owner.headers)
    assert response.status == 204
    assert deleted == [[team.doc_id]]
    db = client.app[DATABASE]
    # The log waits in the trash with the document (see tests/history/test_trash.py).
    assert await db.fetchval("SELECT count(*) FROM doc_heads") == 1
    assert await db.fetchval("SELECT count(*) FROM doc_trash") == 1
    gone = await client.get(f"/api/documents/{team.doc_id}", headers=team.owner.headers)
    await assert_error(gone, 404, "not_found")
    again = await client.delete(f"/api/documents/{team.doc_id}", headers=team.owner.headers)
    await assert_error(again, 404, "not_found")


async def test_documents_of_other_projects_are_invisible(client: Client) -> None:
    team = await create_team(client)
    for url in (f"/api/documents/{team.doc_id}", "/api/documents/no-such-document"):
        response = await client.get(url, headers=team.outsider.headers)
        await assert_error(response, 404, "not_found")
