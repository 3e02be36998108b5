"""Failed logins and registrations are limited per email and per client address."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpClient

from auth import ratelimit
from auth.errors import RateLimitedError
from auth.ratelimit import LocalRateLimiter, create_rate_limiter
from collab.app import create_app
from collab.config import Settings
from tests.auth.fixtures import PASSWORD, Client, assert_error, create_account, unique_email
from tests.conftest import TEST_SECRET


async def _fail_login(client: Client, email: str) -> int:
    response = await client.post(
        "/api/auth/login", json={"email": email, "password": "wrong password"}
    )
    return response.status


async def test_eleventh_failed_login_is_429(client: Client) -> None:
    account = await create_account(client)
    for _ in range(10):
        assert await _fail_login(client, account.email) == 401
    response = await client.post(
        "/api/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    error = await assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"]["retry_after"] == retry_after


async def test_unknown_emails_count_too(client: Client) -> None:
    email = unique_email("ghost")
    statuses = [await _fail_login(client, email) for _ in range(11)]
    assert statuses == [401] * 10 + [429]


async def test_registration_is_limited_per_address(client: Client) -> None:
    statuses = []
    for _ in range(11):
        response = await client.post(
            "/api/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "display_name": "Bot"},
        )
        statuses.append(response.status)
    assert statuses == [201] * 10 + [429]


async def test_a_burst_of_concurrent_guesses_is_cut_at_the_limit(client: Client) -> None:
    account = await create_account(client)
    statuses = await asyncio.gather(*(_fail_login(client, account.email) for _ in range(20)))
    assert sorted(statuses) == [401] * 10 + [429] * 10


async def test_successful_logins_do_not_use_up_the_budget(client: Client) -> None:
    account = await create_account(client)
    for _ in range(15):
        response = await client.post(
            "/api/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        assert response.status == 200
    assert await _fail_login(client, account.email) == 401


async def test_local_limiter_counts_keys_separately_and_forgets_after_a_window() -> None:
    now = [1000.0]
    limiter = LocalRateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        await limiter.acquire("addr:1", "email:a")
    with pytest.raises(RateLimitedError) as info:
        await limiter.acquire("addr:2", "email:a")  # the email alone is enough
    assert info.value.retry_after == 60
    await limiter.acquire("addr:3", "email:b")
    now[0] += 59.5
    with pytest.raises(RateLimitedError) as info:
        await limiter.acquire("addr:1")
    assert info.value.retry_after == 1
    now[0] += 1
    await limiter.acquire("addr:1", "email:a")


async def test_local_limiter_release_gives_an_attempt_back() -> None:
    limiter = LocalRateLimiter(2)
    await limiter.acquire("k")
    await limiter.release("k")
    await limiter.acquire("k")
    await limiter.acquire("k")
    with pytest.raises(RateLimitedError):
        await limiter.acquire("k")
    await limiter.release("unknown")  # nothing to give back: harmless


async def test_local_limiter_memory_is_bounded() -> None:
    limiter = LocalRateLimiter(2, max_keys=100)
    for n in range(1000):
        await limiter.acquire(f"email:{n}")
    assert len(limiter._windows) == 100


# Redis: counters shared by every node.


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """A key prefix of this test's own, so parallel or repeated runs never share counters."""
    prefix = f"collab:rl:test-{uuid.uuid4().hex}:"
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", prefix)
    return prefix


@pytest.mark.redis
async def test_redis_limiter_is_shared_between_nodes(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    node_a = create_rate_limiter(redis_client, failures_per_minute=10)
    node_b = create_rate_limiter(redis_client, failures_per_minute=10)
    try:
        for _ in range(5):
            await node_a.acquire("login:email:x")
            await node_b.acquire("login:email:x")
        with pytest.raises(RateLimitedError) as info:
            await node_b.acquire("login:addr:y", "login:email:x")
        assert 1 <= info.value.retry_after <= 60
        await node_a.acquire("login:email:other")
        await node_a.release("login:email:other")
        assert await redis_client.get(redis_prefix + "login:email:other") == b"0"
        # The window always ends: the counter carries an expiry.
        ttl = await redis_client.pttl(redis_prefix + "login:email:x")
        assert 0 < ttl <= 60_000
    finally:
        keys = [key async for key in redis_client.scan_iter(match=redis_prefix + "*")]
        await redis_client.delete(*keys)


@pytest.mark.redis
@pytest.mark.postgres
async def test_eleventh_failed_login_across_two_nodes_is_429(
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
) -> None:
    # The app names its limiter keys after COLLAB_REDIS_PREFIX: give this test its own.
    deployment = redis_prefix.rstrip(":").replace(":", "-")
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=deployment,
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        node_id="node-a",
    )
    node_a = await aiohttp_client(create_app(settings))
    node_b = await aiohttp_client(create_app(dataclasses.replace(settings, node_id="node-b")))
    try:
        account = await create_account(node_a)
        for node in [node_a, node_b] * 5:
            assert await _fail_login(node, account.email) == 401
        response = await node_a.post(
            "/api/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        await assert_error(response, 429, "rate_limited")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    finally:
        keys = [key async for key in redis_client.scan_iter(match=deployment + ":*")]
        if keys:
            await redis_client.delete(*keys)
