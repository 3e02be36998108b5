"""Projects through HTTP: create, list, read, update, delete (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import re

import pytest

from collab.realtime.access import AccessChanges
from eventstore.keys import DATABASE
from tests.auth.fixtures import (
    Client,
    add_member,
    assert_error,
    create_account,
    create_document,
    create_project,
)
from tests.auth.fixtures import cheap_passwords as cheap_passwords

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_create_and_read_a_project(client: Client) -> None:
    owner = await create_account(client)
    response = await client.post(
        "/api/projects",
        json={"name": "  Compilers ", "description": "Homework\nfor the course"},
        headers=owner.headers,
    )
    assert response.status == 201
    project = await response.json()
    assert set(project) == {"id", "name", "description", "owner_id", "role", "created_at"}
    assert project["name"] == "Compilers"
    assert project["description"] == "Homework\nfor the course"
    assert project["owner_id"] == owner.id
    assert project["role"] == "owner"
    assert ISO_UTC.match(project["created_at"])
    read = await client.get(f"/api/projects/{project['id']}", headers=owner.headers)
    assert read.status == 200
    assert await read.json() == project


async def test_description_defaults_to_empty(client: Client) -> None:
    owner = await create_account(client)
    response = await client.post("/api/projects", json={"name": "P"}, headers=owner.headers)
    assert (await response.json())["description"] == ""


async def test_list_shows_only_the_callers_projects_newest_first(client: Client) -> None:
    alice = await create_account(client)
    bob = await create_account(client)
    first = await create_project(client, alice, "first")
    second = await create_project(client, alice, "second")
    await create_project(client, bob, "bob's")
    shared = await create_project(client, bob, "shared with alice")
    await add_member(client, bob, shared, alice.email, "viewer")

    response = await client.get("/api/projects", headers=alice.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert [item["id"] for item in items] == [shared, second, first]
    assert [item["role"] for item in items] == ["viewer", "owner", "owner"]


async def test_role_is_the_callers(client: Client) -> None:
    owner = await create_account(client)
    editor = await create_account(client)
    project_id = await create_project(client, owner)
    await add_member(client, owner, project_id, editor.email, "editor")
    response = await client.get(f"/api/projects/{project_id}", headers=editor.headers)
    body = await response.json()
    assert (body["role"], body["owner_id"]) == ("editor", owner.id)


async def test_patch_changes_only_given_fields(client: Client) -> None:
    owner = await create_account(client)
    project_id = await create_project(client, owner, "Old")
    await client.patch(
        f"/api/projects/{project_id}", json={"description": "new text"}, headers=owner.headers
    )
    response = await client.patch(
        f"/api/projects/{project_id}", json={"name": "New"}, headers=owner.headers
    )
    assert response.status == 200
    body = await response.json()
    assert (body["name"], body["description"]) == ("New", "new text")
    empty = await client.patch(f"/api/projects/{project_id}", json={}, headers=owner.headers)
    assert (await empty.json())["name"] == "New"


async def test_delete_removes_members_documents_and_logs(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[list[str]] = []

    async def record(self: AccessChanges, doc_ids: list[str]) -> None:
        deleted.append(sorted(doc_ids))

    monkeypatch.setattr(AccessChanges, "documents_deleted", record)
    owner = await create_account(client)
    viewer = await create_account(client)
    project_id = await create_project(client, owner)
    keep = await create_project(client, owner, "kept")
    await add_member(client, owner, project_id, viewer.email, "viewer")
    docs = sorted([await create_document(client, owner, project_id, n) for n in ("a", "b")])
    kept_doc = await create_document(client, owner, keep)

    response = await client.delete(f"/api/projects/{project_id}", headers=owner.headers)
    assert response.status == 204
    assert deleted == [docs]
    db = client.app[DATABASE]
    assert (
        await db.fetchval("SELECT count(*) FROM documents WHERE project_id = $1", project_id) == 0
    )
    assert (
        await db.fetchval("SELECT count(*) FROM project_members WHERE project_id = $1", project_id)
        == 0
    )
    heads = await db.fetch("SELECT doc_id FROM doc_heads")
    assert [row["doc_id"] for row in heads] == [kept_doc]
    for account in (owner, viewer):
        gone = await client.get(f"/api/projects/{project_id}", headers=account.headers)
        await assert_error(gone, 404, "not_found")
    for doc_id in docs:
        gone = await client.get(f"/api/documents/{doc_id}", headers=owner.headers)
        await assert_error(gone, 404, "not_found")


async def test_unknown_and_invisible_projects_look_the_same(client: Client) -> None:
    owner = await create_account(client)
    stranger = await create_account(client)
    project_id = await create_project(client, owner)
    invisible = await client.get(f"/api/projects/{project_id}", headers=stranger.headers)
    unknown = await client.get("/api/projects/does-not-exist", headers=stranger.headers)
    assert await assert_error(invisible, 404) == await assert_error(unknown, 404)


async def test_delete_racing_with_new_documents_leaves_no_orphan_logs(client: Client) -> None:
    owner = await create_account(client)
    project_id = await create_project(client, owner)
    creates = [
        client.post(
            f"/api/projects/{project_id}/documents",
            json={"name": f"doc{n}", "language": "text"},
            headers=owner.headers,
        )
        for n in range(8)
    ]
    delete = client.delete(f"/api/projects/{project_id}", headers=owner.headers)
    responses = await asyncio.gather(*creates[:4], delete, *creates[4:])
    assert responses[4].status == 204
    assert {r.status for r in responses[:4] + responses[5:]} <= {201, 404}
    db = client.app[DATABASE]
    assert await db.fetchval("SELECT count(*) FROM documents") == 0
    assert await db.fetchval("SELECT count(*) FROM doc_heads") == 0
