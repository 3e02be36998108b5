"""Fixtures and helpers for tests that need accounts (auth and collab tests import them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
    """Check the contract's error shape and return its ``error`` object."""
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
