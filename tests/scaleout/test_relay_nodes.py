"""Two in-process nodes on one Postgres schema and one Redis: subscriptions
follow open documents, and a node never re-applies its own messages."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.realtime.keys import ROOMS
from collab.realtime.protocol import SyncMessage, SyncType, decode_message
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import TEST_SECRET, Client
from tests.realtime.pyclient import PyClient, connect
from tests.realtime.seed import Seeded, seed

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(60)]


def node_settings(postgres_url: str, redis_url: str, prefix: str, node: str, tmp: Path) -> Settings:
    return Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        jwt_secret=TEST_SECRET,
        data_dir=tmp / node,
        node_id=node,
        room_grace_seconds=0.1,
    )


def updates_received(client: PyClient) -> int:
    return sum(
        1
        for frame in client.received
        if isinstance(m := decode_message(frame), SyncMessage) and m.subtype is SyncType.UPDATE
    )


async def channels(redis_url: str, prefix: str) -> list[bytes | str]:
    async with aioredis.from_url(redis_url) as probe:
        return list(await probe.pubsub_channels(f"{prefix}:doc:*"))


async def test_subscriptions_follow_open_documents_and_nothing_echoes(
    postgres_url: str, redis_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    prefix = f"collab-test-{uuid.uuid4().hex[:8]}"
    a: Client = await aiohttp_client(
        create_app(node_settings(postgres_url, redis_url, prefix, "A", tmp_path))
    )
    b: Client = await aiohttp_client(
        create_app(node_settings(postgres_url, redis_url, prefix, "B", tmp_path))
    )
    seeded: Seeded = await seed(a.app, {"owner": Role.OWNER, "editor": Role.EDITOR})
    path = f"/ws/{seeded.doc_id}?token={seeded.tokens['owner']}"
    assert await channels(redis_url, prefix) == []
    async with (
        connect(a, path, client_id=1) as writer,
        connect(a, path, client_id=2) as same_node,
        connect(b, path, client_id=3) as other_node,
    ):
        assert await channels(redis_url, prefix) == [f"{prefix}:doc:{seeded.doc_id}".encode()]
        for char in "relayed":
            writer.text += char
            await asyncio.sleep(0.01)
        await other_node.wait_text("relayed")
        await same_node.wait_text("relayed")
        await asyncio.sleep(0.3)  # time for any echo to arrive
        assert updates_received(same_node) == 7
        assert updates_received(other_node) == 7
        room_a = a.app[ROOMS].get(seeded.doc_id)
        room_b = b.app[ROOMS].get(seeded.doc_id)
        assert room_a is not None
        assert room_b is not None
        assert room_a.seq == room_b.seq == 7
    assert (await EventLog(a.app[DATABASE]).head(seeded.doc_id)).seq == 7
    async with asyncio.timeout(5):
        while await channels(redis_url, prefix):  # noqa: ASYNC110 - unload after the grace period
            await asyncio.sleep(0.05)
