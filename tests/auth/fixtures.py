"""Fixtures and helpers for tests that need accounts (auth and collab tests import them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from auth import passwords

Client = TestClient[web.Request, web.Application]
PASSWORD = "correct horse battery staple"
# The cheapest argon2id argon2-cffi allows: the suite hashes hundreds of
# passwords, and production's cost is not what these tests are about.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
# What auth.passwords uses outside tests, captured before any fixture swaps it.
DEFAULT_HASHER = passwords.HASHER


@pytest.fixture(autouse=True)
def cheap_passwords() -> Iterator[None]:
    """Swap argon2-cffi's default cost for the cheapest one for one test."""
    saved = passwords.HASHER
    passwords.HASHER = CHEAP_HASHER
    try:
        yield
    finally:
        passwords.HASHER = saved


def unique_email(tag: str = "user") -> str:
    """An email no other test uses."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


async def register(
    client: Client,
    email: str | None = None,
    *,
    password: str = PASSWORD,
    display_name: str = "Test User",
) -> dict[str, Any]:
    """Register an account and return the 201 body (user and tokens)."""
    response = await client.post(
        "/api/auth/register",
        json={
            "email": email or unique_email(),
            "password": password,
            "display_name": display_name,
        },
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the JSON error shape and return its ``error`` object."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


@dataclass(frozen=True)
class Account:
    """A registered account with its tokens."""

    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers for this account."""
        return bearer(self.access_token)


async def create_account(client: Client, tag: str = "user", **kwargs: Any) -> Account:
    """Register a fresh account."""
    body = await register(client, unique_email(tag), **kwargs)
    return Account(
        body["user"]["id"], body["user"]["email"], body["access_token"], body["refresh_token"]
    )


@dataclass(frozen=True)
class Team:
    """A project with one account per role, one outsider and one document.

    ``other`` is a second editor: the member that member routes act on.
    """

    owner: Account
    editor: Account
    viewer: Account
    outsider: Account
    other: Account
    project_id: str
    doc_id: str

    def actor(self, name: str) -> Account | None:
        """The account called ``name`` (``anonymous`` is None)."""
        account: Account | None = None if name == "anonymous" else getattr(self, name)
        return account


async def add_member(
    client: Client, owner: Account, project_id: str, email: str, role: str
) -> None:
    """Add ``email`` to the project as ``role`` (the owner asks)."""
    response = await client.post(
        f"/api/projects/{project_id}/members",
        json={"email": email, "role": role},
        headers=owner.headers,
    )
    assert response.status == 201, await response.text()


async def create_project(client: Client, owner: Account, name: str = "Team project") -> str:
    """Create a project and return its id."""
    response = await client.post("/api/projects", json={"name": name}, headers=owner.headers)
    assert response.status == 201, await response.text()
    project_id: str = (await response.json())["id"]
    return project_id


async def create_document(
    client: Client, account: Account, project_id: str, name: str = "main.py"
) -> str:
    """Create a python document and return its id."""
    response = await client.post(
        f"/api/projects/{project_id}/documents",
        json={"name": name, "language": "python"},
        headers=account.headers,
    )
    assert response.status == 201, await response.text()
    doc_id: str = (await response.json())["id"]
    return doc_id


async def create_team(client: Client) -> Team:
    """Owner, editor, viewer and outsider around one project with one document."""
    owner, editor, viewer, outsider, other = [
        await create_account(client, tag)
        for tag in ("owner", "editor", "viewer", "outsider", "other")
    ]
    project_id = await create_project(client, owner)
    await add_member(client, owner, project_id, editor.email, "editor")
    await add_member(client, owner, project_id, viewer.email, "viewer")
    await add_member(client, owner, project_id, other.email, "editor")
    doc_id = await create_document(client, owner, project_id)
    return Team(owner, editor, viewer, outsider, other, project_id, doc_id)
