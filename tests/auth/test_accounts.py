"""Register, login, refresh, logout and me through HTTP, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any, Literal

import argon2
import pytest
from argon2 import PasswordHasher

from auth import passwords
from eventstore.keys import DATABASE
from tests.auth.fixtures import (
    DEFAULT_HASHER,
    PASSWORD,
    Client,
    assert_error,
    bearer,
    create_account,
    register,
    unique_email,
)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def _login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_register_answers_user_and_tokens(client: Client) -> None:
    email = unique_email()
    body = await register(client, email.upper(), display_name="  Ada Lovelace ")
    assert set(body) == {
        "user",
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "session_cookie",
    }
    assert body["token_type"] == "bearer"
    assert body["session_cookie"] is True
    assert body["expires_in"] == 900
    user = body["user"]
    assert set(user) == {"id", "email", "display_name", "created_at"}
    assert user["email"] == email  # stored lower case
    assert user["display_name"] == "Ada Lovelace"
    assert ISO_UTC.match(user["created_at"])
    me = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status == 200
    assert await me.json() == user


async def test_email_is_unique_in_any_case(client: Client) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(
        "/api/auth/register",
        json={"email": email.upper(), "password": PASSWORD, "display_name": "Twin"},
    )
    error = await assert_error(response, 409, "email_taken")
    assert "email" in error["details"]


async def test_concurrent_registrations_of_one_email(client: Client) -> None:
    for _ in range(3):
        email = unique_email("race")
        bodies = [
            {"email": address, "password": PASSWORD, "display_name": "Racer"}
            for address in (email, email.upper())
        ]
        responses = await asyncio.gather(
            *(client.post("/api/auth/register", json=body) for body in bodies)
        )
        assert sorted(r.status for r in responses) == [201, 409]
        count = await client.app[DATABASE].fetchval(
            "SELECT count(*) FROM users WHERE email = $1", email
        )
        assert count == 1


async def test_login_in_any_case_of_the_email(client: Client) -> None:
    account = await create_account(client)
    response = await _login(client, f"  {account.email.upper()} ")
    assert response.status == 200
    body = await response.json()
    assert body["user"]["id"] == account.id
    assert body["token_type"] == "bearer"
    me = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert (await me.json())["id"] == account.id


async def test_wrong_email_and_wrong_password_look_the_same(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await create_account(client)
    checks: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checks.append("verify")
            return super().verify(hash, password)

    monkeypatch.setattr(
        passwords, "HASHER", CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    wrong_password = await _login(client, account.email, "not the password")
    unknown_email = await _login(client, unique_email("nobody"), "not the password")
    first = await assert_error(wrong_password, 401, "invalid_credentials")
    second = await assert_error(unknown_email, 401, "invalid_credentials")
    assert first == second
    # Both ran one argon2 verification: an unknown email costs the same time.
    assert checks == ["verify", "verify"]


async def test_default_hasher_is_argon2id_with_library_defaults() -> None:
    assert DEFAULT_HASHER.type is argon2.Type.ID
    assert DEFAULT_HASHER.time_cost == argon2.DEFAULT_TIME_COST
    assert DEFAULT_HASHER.memory_cost == argon2.DEFAULT_MEMORY_COST
    assert DEFAULT_HASHER.parallelism == argon2.DEFAULT_PARALLELISM


async def test_password_is_stored_as_argon2id(client: Client) -> None:
    account = await create_account(client)
    stored = await client.app[DATABASE].fetchval(
        "SELECT password_hash FROM users WHERE id = $1", account.id
    )
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_login_rehashes_with_current_parameters(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await create_account(client)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    monkeypatch.setattr(passwords, "HASHER", stronger)
    assert (await _login(client, account.email)).status == 200
    stored = await client.app[DATABASE].fetchval(
        "SELECT password_hash FROM users WHERE id = $1", account.id
    )
    assert not stronger.check_needs_rehash(stored)


async def test_refresh_rotates(client: Client) -> None:
    account = await create_account(client)
    response = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert response.status == 200
    body = await response.json()
    assert body["user"]["id"] == account.id
    assert body["refresh_token"] != account.refresh_token
    assert (await client.get("/api/auth/me", headers=bearer(body["access_token"]))).status == 200
    again = await client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert again.status == 200


async def test_logout_revokes_the_session(client: Client) -> None:
    account = await create_account(client)
    first = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    current = (await first.json())["refresh_token"]
    response = await client.post(
        "/api/auth/logout", json={"refresh_token": current}, headers=account.headers
    )
    assert response.status == 204
    after = await client.post("/api/auth/refresh", json={"refresh_token": current})
    await assert_error(after, 401, "invalid_token")
    # Logging out twice is harmless.
    again = await client.post(
        "/api/auth/logout", json={"refresh_token": current}, headers=account.headers
    )
    assert again.status == 204


async def test_logout_cannot_end_someone_elses_session(client: Client) -> None:
    alice = await create_account(client)
    mallory = await create_account(client)
    response = await client.post(
        "/api/auth/logout", json={"refresh_token": alice.refresh_token}, headers=mallory.headers
    )
    await assert_error(response, 401, "invalid_token")
    still = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert still.status == 200


async def test_deleted_account_token_stops_working(client: Client) -> None:
    account = await create_account(client)
    await client.app[DATABASE].execute("DELETE FROM users WHERE id = $1", account.id)
    response = await client.get("/api/auth/me", headers=account.headers)
    await assert_error(response, 401, "unauthorized")
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    await assert_error(refresh, 401, "invalid_token")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD, "display_name": "A"}, "email"),
        ({"email": "a@example.com", "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD}, "display_name"),
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short", "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": 12345678, "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "   "}, "display_name"),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "x" * 101},
            "display_name",
        ),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "A\x00B"},
            "display_name",
        ),
        ({"email": ["a@example.com"], "password": PASSWORD, "display_name": "A"}, "email"),
        (
            {"email": "a@example.com", "password": PASSWORD, "display_name": "A", "admin": True},
            "admin",
        ),
    ],
)
async def test_register_rejects_invalid_fields(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/auth/register", json=body)
    error = await assert_error(response, 422, "validation_failed")
    assert field in error["details"]
    assert await client.app[DATABASE].fetchval("SELECT count(*) FROM users") == 0


async def test_register_accepts_unicode_names(client: Client) -> None:
    body = await register(client, display_name="Zoë 🚀 名前")
    assert body["user"]["display_name"] == "Zoë 🚀 名前"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 422),
        (b'"a string"', 422),
        (b'{"email": "a@example.com", "password": "\\ud800aaaaaaaa", "display_name": "A"}', 422),
    ],
)
async def test_register_rejects_bad_bodies(client: Client, raw: bytes, status: int) -> None:
    response = await client.post(
        "/api/auth/register", data=raw, headers={"Content-Type": "application/json"}
    )
    await assert_error(response, status)


async def test_huge_body_is_413(client: Client) -> None:
    blob = b'{"email": "a@example.com", "password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/api/auth/login", data=io.BytesIO(blob), headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 413)
