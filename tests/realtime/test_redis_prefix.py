"""Every Redis key and channel a node touches starts with ``COLLAB_REDIS_PREFIX``.

Deployments (and test runs) share one Redis by choosing different prefixes.
The node runs with a Redis URL carrying a unique client name; Redis ``MONITOR``
records every command, and the commands of the node's own connections (found
by that name in ``CLIENT LIST``) are checked key by key, channel by channel,
while the node relays edits and presence, rate-limits logins and queues,
follows and cancels a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from tests.conftest import TEST_SECRET
from tests.realtime.pyclient import connect
from tests.realtime.seed import bearer, seed, ws_path

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(60)]

# Commands whose arguments are channels, not keys (COMMAND GETKEYS refuses them).
_CHANNEL_COMMANDS = {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe"}
_NO_NAMES = {"ping", "client", "hello", "select", "info", "script", "command", "echo"}


@contextlib.asynccontextmanager
async def _monitor(redis_url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every command Redis executes while inside, as parsed by redis-py."""
    seen: list[dict[str, Any]] = []
    client = aioredis.from_url(redis_url)
    async with client.monitor() as monitor:
        started = asyncio.Event()

        async def record() -> None:
            await client.ping()  # its echo proves MONITOR is live
            while True:
                command = await monitor.next_command()
                seen.append(command)
                started.set()

        task = asyncio.create_task(record())
        async with asyncio.timeout(5):
            await started.wait()
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await client.aclose()


async def _names_used(redis_url: str, command: list[str]) -> list[str]:
    """The keys or channels a command names."""
    verb = command[0].lower()
    if verb in _NO_NAMES or verb == "monitor":
        return []
    if verb in _CHANNEL_COMMANDS:
        return command[1:]
    if verb in {"publish", "spublish"}:
        return [command[1]]
    async with aioredis.from_url(redis_url, decode_responses=True) as probe:
        try:
            keys = await probe.command_getkeys(*command)
            return [k.decode() if isinstance(k, bytes) else k for k in keys]
        except aioredis.ResponseError:
            # MONITOR joins arguments with spaces, so a payload may split into
            # a wrong count; the first argument is then taken as the key.
            return command[1:2]


def _node_settings(
    postgres_url: str, redis_url: str, name: str, prefix: str, tmp: Path
) -> Settings:
    settings = Settings.from_env(
        {
            "COLLAB_DATABASE_URL": postgres_url,
            "COLLAB_REDIS_URL": f"{redis_url}?client_name={name}",
            "COLLAB_REDIS_PREFIX": prefix,
            "COLLAB_JWT_SECRET": TEST_SECRET,
            "COLLAB_DATA_DIR": str(tmp / "data"),
            "COLLAB_NODE_ID": name,
        }
    )
    return dataclasses.replace(settings, room_grace_seconds=0.1)


async def _node_addresses(redis_url: str, name: str) -> set[str]:
    async with aioredis.from_url(redis_url) as probe:
        clients = await probe.client_list()
    return {c["addr"] for c in clients if c.get("name") == name}


async def _delete_prefixed(redis_url: str, prefix: str) -> None:
    async with aioredis.from_url(redis_url) as probe:
        keys = [key async for key in probe.scan_iter(match=f"{prefix}:*")]
        if keys:
            await probe.delete(*keys)


async def test_every_key_and_channel_has_the_prefix(
    postgres_url: str, redis_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    name = f"prefix-test-{uuid.uuid4().hex[:10]}"
    prefix = f"pfx-{uuid.uuid4().hex[:10]}"
    async with _monitor(redis_url) as seen:
        client = await aiohttp_client(
            create_app(_node_settings(postgres_url, redis_url, name, prefix, tmp_path))
        )
        seeded = await seed(client.app, {"owner": Role.OWNER})
        async with (
            connect(client, ws_path(seeded, "owner"), client_id=11) as a,
            connect(client, ws_path(seeded, "owner"), client_id=12) as b,
        ):
            await a.set_presence({"cursor": 1})
            a.text.insert(0, "relayed")
            await b.wait_text("relayed")
            await b.wait_for(lambda: 11 in b.presence)
        for _ in range(3):
            login = {"email": "nobody@example.com", "password": "wrong password"}
            response = await client.post("/api/auth/login", json=login)
            assert response.status in (401, 429)
        job = {"project_id": seeded.project_id, "language": "python", "source": "print(1)"}
        response = await client.post("/api/jobs", json=job, headers=bearer(seeded, "owner"))
        assert response.status == 202, await response.text()
        job_id = (await response.json())["id"]
        response = await client.post(f"/api/jobs/{job_id}/cancel", headers=bearer(seeded, "owner"))
        assert response.status < 500
        addresses = await _node_addresses(redis_url, name)
        await client.close()
    await _delete_prefixed(redis_url, prefix)
    assert addresses, "the node opened no named Redis connection"
    ours = [c for c in seen if f"{c['client_address']}:{c['client_port']}" in addresses]
    verbs = {c["command"].split()[0].lower() for c in ours}
    # Relay (publish, subscribe), rate limiter (evalsha) and job queue (xadd).
    assert {"publish", "subscribe", "evalsha", "xadd"} <= verbs, verbs
    names = {n for c in ours for n in await _names_used(redis_url, c["command"].split())}
    assert names, "the node named no key or channel"
    assert all(n.startswith(f"{prefix}:") for n in names), sorted(names)
