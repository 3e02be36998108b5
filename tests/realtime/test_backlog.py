"""A database stall piles updates up; the backlog must not disconnect anyone.

After the stall, thousands of events commit at once. They reach the peers as
merged updates rather than thousands of messages, so no peer's bounded queue
overflows and nobody is closed as a slow consumer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import TEST_SECRET
from tests.realtime.pyclient import connect
from tests.realtime.seed import seed

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]
UPDATES = 3000


async def test_backlog_after_a_stall_reaches_everyone(
    postgres_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    settings = Settings(
        database_url=postgres_url,
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path,
        updates_per_second=1e6,
        update_burst=1_000_000,
    )
    app = create_app(settings)
    client = await aiohttp_client(app)
    seeded = await seed(app, {"a": Role.OWNER, "b": Role.EDITOR})
    path = f"/ws/{seeded.doc_id}?token="
    blocker = await asyncpg.connect(postgres_url)
    try:
        async with (
            connect(client, path + seeded.tokens["a"], client_id=1) as writer,
            connect(client, path + seeded.tokens["b"], client_id=2) as reader,
        ):
            stall = blocker.transaction()
            await stall.start()
            await blocker.execute(
                "SELECT seq FROM doc_heads WHERE doc_id = $1 FOR UPDATE", seeded.doc_id
            )
            for i in range(UPDATES):
                writer.text += "x"
                if i % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.5)
            await stall.rollback()
            await reader.wait_for(lambda: len(str(reader.text)) == UPDATES, within=30)
            assert not writer.ws.closed
            assert not reader.ws.closed
    finally:
        await blocker.close()
    assert (await EventLog(app[DATABASE]).head(seeded.doc_id)).seq == UPDATES
