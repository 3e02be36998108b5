"""Bad input to project, member and document routes: the documented 4xx, data unchanged."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.auth.fixtures import Client, Team, assert_error, create_team
from tests.auth.fixtures import cheap_passwords as cheap_passwords

SQL_NAMES = [
    "'; DROP TABLE projects; --",
    'Robert"); DELETE FROM users; --',
    "name' OR '1'='1",
    "%_\\ $1 ?1 :name",
]
UNICODE_NAMES = ["Проект 🚀", "名前のプロジェクト", "e\u0301le\u0300ve", "ﷺ" * 200, "😀" * 200]


def _writes(team: Team) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/projects"),
        ("PATCH", f"/api/projects/{team.project_id}"),
        ("POST", f"/api/projects/{team.project_id}/members"),
        ("PATCH", f"/api/projects/{team.project_id}/members/{team.other.id}"),
        ("POST", f"/api/projects/{team.project_id}/documents"),
        ("PATCH", f"/api/documents/{team.doc_id}"),
    ]


async def _snapshot(client: Client, team: Team) -> dict[str, Any]:
    """Everything the owner can see, to show a refused request changed nothing."""
    headers = team.owner.headers
    urls = [
        "/api/projects",
        f"/api/projects/{team.project_id}/members",
        f"/api/projects/{team.project_id}/documents",
    ]
    return {url: await (await client.get(url, headers=headers)).json() for url in urls}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"\xff\xfe{}", 400),
        (b"[]", 422),
        (b"null", 422),
        (b'{"name": "\\ud83d"}', 422),  # a lone surrogate cannot be stored
        (b'{"name": "a\\u0000b"}', 422),  # Postgres refuses NUL in text
        (b'{"name": ["x"], "role": {}, "language": 1, "email": 2}', 422),
    ],
)
async def test_malformed_bodies(client: Client, raw: bytes, status: int) -> None:
    team = await create_team(client)
    before = await _snapshot(client, team)
    for method, url in _writes(team):
        response = await client.request(
            method,
            url,
            data=raw,
            headers={**team.owner.headers, "Content-Type": "application/json"},
        )
        await assert_error(response, status)
    assert await _snapshot(client, team) == before


async def test_missing_fields_are_named(client: Client) -> None:
    team = await create_team(client)
    expected = {
        "/api/projects": {"name"},
        f"/api/projects/{team.project_id}/members": {"email", "role"},
        f"/api/projects/{team.project_id}/members/{team.other.id}": {"role"},
        f"/api/projects/{team.project_id}/documents": {"name", "language"},
    }
    for method, url in _writes(team):
        if url not in expected:
            continue  # PATCH of a project or document: every field is optional
        response = await client.request(method, url, json={}, headers=team.owner.headers)
        error = await assert_error(response, 422, "validation_failed")
        assert set(error["details"]) == expected[url]


async def test_huge_bodies_are_413(client: Client) -> None:
    team = await create_team(client)
    before = await _snapshot(client, team)
    blob = json.dumps({"name": "x" * (10 * 1024 * 1024)}).encode()
    for method, url in _writes(team):
        response = await client.request(
            method,
            url,
            data=io.BytesIO(blob),
            headers={**team.owner.headers, "Content-Type": "application/json"},
        )
        await assert_error(response, 413)
    assert await _snapshot(client, team) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "tab\tinside"},
        {"name": None},
        {"name": 12},
        {"name": "ok", "description": "d" * 2001},
        {"name": "ok", "description": 5},
        {"name": "ok", "owner_id": "someone-else"},
    ],
)
async def test_invalid_project_fields(client: Client, body: dict[str, Any]) -> None:
    team = await create_team(client)
    before = await _snapshot(client, team)
    for method, url in _writes(team)[:2]:
        response = await client.request(method, url, json=body, headers=team.owner.headers)
        await assert_error(response, 422, "validation_failed")
    assert await _snapshot(client, team) == before


@pytest.mark.parametrize("name", SQL_NAMES + UNICODE_NAMES)
async def test_names_are_stored_literally(client: Client, name: str) -> None:
    team = await create_team(client)
    created = await client.post(
        "/api/projects", json={"name": name, "description": name}, headers=team.owner.headers
    )
    assert created.status == 201, await created.text()
    project = await created.json()
    read = await client.get(f"/api/projects/{project['id']}", headers=team.owner.headers)
    assert ((await read.json())["name"], (await read.json())["description"]) == (name, name)
    doc = await client.post(
        f"/api/projects/{team.project_id}/documents",
        json={"name": name, "language": "text"},
        headers=team.owner.headers,
    )
    assert (await doc.json())["name"] == name
    listing = await client.get("/api/projects", headers=team.owner.headers)
    assert len((await listing.json())["items"]) == 2  # nothing else was touched


async def test_long_names_up_to_the_limit(client: Client) -> None:
    team = await create_team(client)
    name = "n" * 200
    response = await client.patch(
        f"/api/projects/{team.project_id}", json={"name": f"  {name}  "}, headers=team.owner.headers
    )
    assert (await response.json())["name"] == name
