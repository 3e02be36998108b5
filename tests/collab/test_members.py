"""Members through HTTP: list, add by email, change role, remove (SQLite and Postgres)."""

from __future__ import annotations

import pytest

from collab.realtime.access import AccessChanges
from tests.auth.fixtures import (
    Client,
    Team,
    add_member,
    assert_error,
    create_account,
    create_team,
    unique_email,
)
from tests.auth.fixtures import cheap_passwords as cheap_passwords


@pytest.fixture
def access_changes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Calls of ``AccessChanges.member_changed`` as (project_id, user_id)."""
    calls: list[tuple[str, str]] = []

    async def record(self: AccessChanges, project_id: str, user_id: str) -> None:
        calls.append((project_id, user_id))

    monkeypatch.setattr(AccessChanges, "member_changed", record)
    return calls


def _members(team: Team) -> str:
    return f"/api/projects/{team.project_id}/members"


async def test_list_members_in_joining_order(client: Client) -> None:
    team = await create_team(client)
    response = await client.get(_members(team), headers=team.viewer.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert [(m["user_id"], m["role"]) for m in items] == [
        (team.owner.id, "owner"),
        (team.editor.id, "editor"),
        (team.viewer.id, "viewer"),
        (team.other.id, "editor"),
    ]
    assert set(items[0]) == {"user_id", "email", "display_name", "role"}
    assert items[0]["email"] == team.owner.email


async def test_add_member_by_email_in_any_case(client: Client) -> None:
    team = await create_team(client)
    newcomer = await create_account(client)
    response = await client.post(
        _members(team),
        json={"email": newcomer.email.upper(), "role": "viewer"},
        headers=team.owner.headers,
    )
    assert response.status == 201
    assert await response.json() == {
        "user_id": newcomer.id,
        "email": newcomer.email,
        "display_name": "Test User",
        "role": "viewer",
    }
    visible = await client.get(f"/api/projects/{team.project_id}", headers=newcomer.headers)
    assert (await visible.json())["role"] == "viewer"


async def test_add_unknown_email_creates_an_invite(client: Client) -> None:
    team = await create_team(client)
    email = unique_email()
    response = await client.post(
        _members(team), json={"email": email, "role": "editor"}, headers=team.owner.headers
    )
    assert response.status == 201
    assert (await response.json())["invite"]["email"] == email


@pytest.mark.parametrize("who", ["viewer", "owner"])
async def test_add_existing_member_is_409(client: Client, who: str) -> None:
    team = await create_team(client)
    email = getattr(team, who).email
    response = await client.post(
        _members(team), json={"email": email, "role": "editor"}, headers=team.owner.headers
    )
    await assert_error(response, 409, "already_member")


@pytest.mark.parametrize("role", ["owner", "admin", "", None, 3])
async def test_member_role_must_be_editor_or_viewer(client: Client, role: object) -> None:
    team = await create_team(client)
    newcomer = await create_account(client)
    added = await client.post(
        _members(team), json={"email": newcomer.email, "role": role}, headers=team.owner.headers
    )
    assert "role" in (await assert_error(added, 422, "validation_failed"))["details"]
    changed = await client.patch(
        f"{_members(team)}/{team.editor.id}", json={"role": role}, headers=team.owner.headers
    )
    assert "role" in (await assert_error(changed, 422, "validation_failed"))["details"]


async def test_change_role(client: Client, access_changes: list[tuple[str, str]]) -> None:
    team = await create_team(client)
    url = f"{_members(team)}/{team.editor.id}"
    response = await client.patch(url, json={"role": "viewer"}, headers=team.owner.headers)
    assert response.status == 200
    assert (await response.json())["role"] == "viewer"
    assert access_changes == [(team.project_id, team.editor.id)]
    # The demotion holds at once: the former editor can no longer create documents.
    create = await client.post(
        f"/api/projects/{team.project_id}/documents",
        json={"name": "x.py", "language": "python"},
        headers=team.editor.headers,
    )
    await assert_error(create, 403, "forbidden")
    # Setting the same role again changes nothing and notifies no one.
    await client.patch(url, json={"role": "viewer"}, headers=team.owner.headers)
    assert len(access_changes) == 1


async def test_owner_cannot_be_demoted_or_removed(
    client: Client, access_changes: list[tuple[str, str]]
) -> None:
    team = await create_team(client)
    url = f"{_members(team)}/{team.owner.id}"
    demote = await client.patch(url, json={"role": "editor"}, headers=team.owner.headers)
    await assert_error(demote, 409, "owner_fixed")
    remove = await client.delete(url, headers=team.owner.headers)
    await assert_error(remove, 409, "owner_fixed")
    assert access_changes == []
    project = await client.get(f"/api/projects/{team.project_id}", headers=team.owner.headers)
    assert (await project.json())["role"] == "owner"


async def test_owner_removes_a_member(
    client: Client, access_changes: list[tuple[str, str]]
) -> None:
    team = await create_team(client)
    response = await client.delete(f"{_members(team)}/{team.editor.id}", headers=team.owner.headers)
    assert response.status == 204
    assert access_changes == [(team.project_id, team.editor.id)]
    gone = await client.get(f"/api/projects/{team.project_id}", headers=team.editor.headers)
    await assert_error(gone, 404, "not_found")
    doc = await client.get(f"/api/documents/{team.doc_id}", headers=team.editor.headers)
    await assert_error(doc, 404, "not_found")


async def test_member_leaves(client: Client, access_changes: list[tuple[str, str]]) -> None:
    team = await create_team(client)
    response = await client.delete(
        f"{_members(team)}/{team.viewer.id}", headers=team.viewer.headers
    )
    assert response.status == 204
    assert access_changes == [(team.project_id, team.viewer.id)]
    listing = await client.get("/api/projects", headers=team.viewer.headers)
    assert (await listing.json())["items"] == []


async def test_editor_cannot_remove_others(client: Client) -> None:
    team = await create_team(client)
    response = await client.delete(
        f"{_members(team)}/{team.viewer.id}", headers=team.editor.headers
    )
    await assert_error(response, 403, "forbidden")


async def test_unknown_member_is_404(client: Client) -> None:
    team = await create_team(client)
    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method,
            f"{_members(team)}/{team.outsider.id}",
            json={"role": "viewer"} if method == "PATCH" else None,
            headers=team.owner.headers,
        )
        await assert_error(response, 404, "member_not_found")


async def test_removed_member_can_be_added_again(client: Client) -> None:
    team = await create_team(client)
    await client.delete(f"{_members(team)}/{team.viewer.id}", headers=team.owner.headers)
    await add_member(client, team.owner, team.project_id, team.viewer.email, "editor")
    project = await client.get(f"/api/projects/{team.project_id}", headers=team.viewer.headers)
    assert (await project.json())["role"] == "editor"
