"""Upgrades that cannot read the database are told to retry (1013), never dropped.

An upgrade reads the caller and their role through a few admission slots. When
the database fails, or every slot stays taken past the admission wait, the
socket is closed with 1013, which the stock client treats as "reconnect",
instead of an abnormal drop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.realtime import endpoint
from tests.conftest import TEST_SECRET, Client
from tests.realtime.seed import Seeded, seed, ws_path
from tests.support.tcpproxy import ProxyMode, TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

TRY_AGAIN_LATER = 1013


async def _close_code(client: Client, path: str) -> int | None:
    ws = await client.ws_connect(path)
    message = await ws.receive(timeout=20)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()
    code: int | None = ws.close_code
    return code


async def _node_behind_proxy(
    postgres_url: str, tmp_path: Path, aiohttp_client: AiohttpClient, proxy: TcpProxy
) -> tuple[Client, Seeded]:
    parts = urlsplit(postgres_url)
    proxied = postgres_url.replace(f":{parts.port}", f":{proxy.port}", 1)
    app = create_app(Settings(database_url=proxied, jwt_secret=TEST_SECRET, data_dir=tmp_path))
    client = await aiohttp_client(app)
    seeded = await seed(app, {"owner": Role.OWNER})
    return client, seeded


async def test_database_failure_at_upgrade_closes_with_1013(
    postgres_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    parts = urlsplit(postgres_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        client, seeded = await _node_behind_proxy(postgres_url, tmp_path, aiohttp_client, proxy)
        await proxy.set_mode(ProxyMode.RESET)
        assert await _close_code(client, ws_path(seeded, "owner")) == TRY_AGAIN_LATER
        await proxy.set_mode(ProxyMode.PASS)


async def test_upgrade_waiting_past_the_admission_wait_closes_with_1013(
    postgres_url: str,
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(endpoint, "ADMISSION_WAIT", 0.5)
    parts = urlsplit(postgres_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        client, seeded = await _node_behind_proxy(postgres_url, tmp_path, aiohttp_client, proxy)
        # The database stops answering: these upgrades take every slot and hang in their reads.
        await proxy.set_mode(ProxyMode.BLACKHOLE)
        holders = [
            asyncio.create_task(client.ws_connect(ws_path(seeded, "owner")))
            for _ in range(endpoint.ADMISSIONS_AT_ONCE)
        ]
        await asyncio.sleep(0.3)
        assert await _close_code(client, ws_path(seeded, "owner")) == TRY_AGAIN_LATER
        await proxy.set_mode(ProxyMode.PASS)
        for holder in holders:
            ws = await holder
            await ws.close()
