"""Invitations: create, list, revoke, accept; expiry, reuse, wrong email, hostile input."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from eventstore.keys import DATABASE
from tests.auth.fixtures import (
    Account,
    Client,
    Team,
    assert_error,
    create_account,
    create_team,
    register,
    unique_email,
)


def _invites(team: Team) -> str:
    return f"/api/projects/{team.project_id}/invites"


async def _invite(client: Client, team: Team, **body: Any) -> dict[str, Any]:
    response = await client.post(
        _invites(team), json={"role": "editor", **body}, headers=team.owner.headers
    )
    assert response.status == 201, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def _accept(client: Client, token: str, account: Account) -> Any:
    return await client.post(f"/api/invites/{token}/accept", headers=account.headers)


async def _role(client: Client, team: Team, account: Account) -> str | None:
    response = await client.get(f"/api/projects/{team.project_id}", headers=account.headers)
    if response.status == 404:
        return None
    role: str = (await response.json())["role"]
    return role


async def test_owner_creates_an_invite_with_a_link(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team, role="viewer", expires_in_hours=2)
    assert set(invite) == {"id", "token", "url", "role", "email", "expires_at"}
    assert invite["role"] == "viewer" and invite["email"] is None
    base = f"http://{client.server.host}:{client.server.port}"
    assert invite["url"] == f"{base}/#invite={invite['token']}"
    assert len(invite["token"]) >= 40
    rows = await client.app[DATABASE].fetch("SELECT token_hash FROM project_invites")
    assert all(invite["token"] not in row["token_hash"] for row in rows)


async def test_accept_joins_with_the_role(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team, role="viewer")
    newcomer = await create_account(client)
    response = await _accept(client, invite["token"], newcomer)
    assert response.status == 200
    project = await response.json()
    assert (project["id"], project["role"]) == (team.project_id, "viewer")
    assert await _role(client, team, newcomer) == "viewer"


async def test_accepting_twice_is_harmless_but_nobody_else_may_reuse(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    first, second = await create_account(client), await create_account(client)
    assert (await _accept(client, invite["token"], first)).status == 200
    assert (await _accept(client, invite["token"], first)).status == 200
    await assert_error(await _accept(client, invite["token"], second), 410, "invite_gone")
    assert await _role(client, team, second) is None


async def test_removed_member_cannot_rejoin_with_a_used_invite(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    newcomer = await create_account(client)
    assert (await _accept(client, invite["token"], newcomer)).status == 200
    removed = await client.delete(
        f"/api/projects/{team.project_id}/members/{newcomer.id}", headers=team.owner.headers
    )
    assert removed.status == 204
    await assert_error(await _accept(client, invite["token"], newcomer), 410, "invite_gone")


async def test_invite_for_an_email_is_only_for_that_account(client: Client) -> None:
    team = await create_team(client)
    email = unique_email("grace")
    invite = await _invite(client, team, email=email.upper())
    assert invite["email"] == email
    stranger = await create_account(client)
    await assert_error(await _accept(client, invite["token"], stranger), 403, "invite_wrong_email")
    body = await register(client, email)
    grace = Account(body["user"]["id"], email, body["access_token"], body["refresh_token"])
    assert (await _accept(client, invite["token"], grace)).status == 200


async def test_expired_invite_is_gone(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    await client.app[DATABASE].execute(
        "UPDATE project_invites SET expires_at = $1 WHERE id = $2", time.time() - 1, invite["id"]
    )
    newcomer = await create_account(client)
    await assert_error(await _accept(client, invite["token"], newcomer), 410, "invite_gone")
    listed = await client.get(_invites(team), headers=team.owner.headers)
    assert [i["status"] for i in (await listed.json())["items"]] == ["expired"]


async def test_revoked_invite_is_gone(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    path = f"{_invites(team)}/{invite['id']}"
    assert (await client.delete(path, headers=team.owner.headers)).status == 204
    assert (await client.delete(path, headers=team.owner.headers)).status == 204
    newcomer = await create_account(client)
    await assert_error(await _accept(client, invite["token"], newcomer), 410, "invite_gone")
    unknown = await client.delete(f"{_invites(team)}/nope", headers=team.owner.headers)
    await assert_error(unknown, 404, "invite_not_found")


async def test_list_shows_status_and_never_tokens(client: Client) -> None:
    team = await create_team(client)
    used, revoked, pending = [await _invite(client, team) for _ in range(3)]
    assert (await _accept(client, used["token"], await create_account(client))).status == 200
    await client.delete(f"{_invites(team)}/{revoked['id']}", headers=team.owner.headers)
    response = await client.get(_invites(team), headers=team.owner.headers)
    assert response.status == 200
    items = {i["id"]: i for i in (await response.json())["items"]}
    assert items[used["id"]]["status"] == "accepted"
    assert items[revoked["id"]]["status"] == "revoked"
    assert items[pending["id"]]["status"] == "pending"
    assert all("token" not in item for item in items.values())


@pytest.mark.parametrize(("who", "status"), [("editor", 403), ("outsider", 404)])
async def test_only_the_owner_manages_invites(client: Client, who: str, status: int) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    actor = team.actor(who)
    assert actor is not None
    create = await client.post(_invites(team), json={"role": "editor"}, headers=actor.headers)
    await assert_error(create, status)
    await assert_error(await client.get(_invites(team), headers=actor.headers), status)
    revoke = await client.delete(f"{_invites(team)}/{invite['id']}", headers=actor.headers)
    await assert_error(revoke, status)


async def test_anonymous_gets_401(client: Client) -> None:
    team = await create_team(client)
    invite = await _invite(client, team)
    await assert_error(await client.post(_invites(team), json={"role": "editor"}), 401)
    await assert_error(await client.post(f"/api/invites/{invite['token']}/accept"), 401)


async def test_owner_and_higher_roles_are_never_downgraded(client: Client) -> None:
    team = await create_team(client)
    for account, kept in ((team.owner, "owner"), (team.editor, "editor")):
        invite = await _invite(client, team, role="viewer")
        assert (await _accept(client, invite["token"], account)).status == 200
        assert await _role(client, team, account) == kept
    invite = await _invite(client, team, role="editor")
    assert (await _accept(client, invite["token"], team.viewer)).status == 200
    assert await _role(client, team, team.viewer) == "editor"


@pytest.mark.parametrize("token", ["unknown", "x" * 129, "%00", "..%2F..%2Fetc", "🎉" * 40])
async def test_unknown_or_malformed_tokens_are_404(client: Client, token: str) -> None:
    account = await create_account(client)
    response = await client.post(f"/api/invites/{token}/accept", headers=account.headers)
    await assert_error(response, 404)


@pytest.mark.parametrize(
    "body",
    [
        {"role": "owner"},
        {"role": "admin"},
        {},
        {"role": "editor", "email": "not an email"},
        {"role": "editor", "email": "a\x00@example.com"},
        {"role": "editor", "expires_in_hours": 0},
        {"role": "editor", "expires_in_hours": 100000},
        {"role": "editor", "expires_in_hours": "5"},
        {"role": "editor", "expires_in_hours": 1.5},
        {"role": "editor", "surprise": True},
        {"role": ["editor"]},
    ],
)
async def test_hostile_create_bodies_are_422(client: Client, body: dict[str, Any]) -> None:
    team = await create_team(client)
    response = await client.post(_invites(team), json=body, headers=team.owner.headers)
    await assert_error(response, 422, "validation_failed")


async def test_malformed_and_oversized_bodies(client: Client) -> None:
    team = await create_team(client)
    headers = dict(team.owner.headers, **{"Content-Type": "application/json"})
    bad = await client.post(_invites(team), data=b"{not json", headers=headers)
    await assert_error(bad, 400)
    payload = io.BytesIO(b"[" + b"1," * 600_000 + b"1]")
    huge = await client.post(_invites(team), data=payload, headers=headers)
    await assert_error(huge, 413)


async def test_adding_an_unregistered_email_creates_an_invite(client: Client) -> None:
    team = await create_team(client)
    email = unique_email("later")
    response = await client.post(
        f"/api/projects/{team.project_id}/members",
        json={"email": email, "role": "viewer"},
        headers=team.owner.headers,
    )
    assert response.status == 201
    invite = (await response.json())["invite"]
    assert set(invite) == {"id", "token", "url", "role", "email", "expires_at"}
    assert (invite["email"], invite["role"]) == (email, "viewer")
    body = await register(client, email)
    later = Account(body["user"]["id"], email, body["access_token"], body["refresh_token"])
    assert (await _accept(client, invite["token"], later)).status == 200
    assert await _role(client, team, later) == "viewer"
