"""REST reads of content return what connected clients see; awareness never
reaches the log; an expiring token does not cut an open connection."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pycrdt import Doc, Text
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from auth.tokens import LEEWAY_SECONDS as TOKEN_LEEWAY
from collab.app import create_app
from collab.config import Settings
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, bearer, seed, ws_path


async def test_content_and_state_match_the_clients(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        editor.text += "héllo 😀 wörld"
        await asyncio.sleep(0.05)
        content = await client.get(
            f"/api/documents/{seeded.doc_id}/content", headers=bearer(seeded, "viewer")
        )
        assert content.status == 200
        body = await content.json()
        assert body == {"doc_id": seeded.doc_id, "seq": 1, "text": "héllo 😀 wörld"}
        state = await client.get(
            f"/api/documents/{seeded.doc_id}/state", headers=bearer(seeded, "viewer")
        )
        assert state.status == 200
        assert state.content_type == "application/octet-stream"
        doc: Doc[Any] = Doc()
        doc.apply_update(await state.read())
        assert str(doc.get("content", type=Text)) == str(editor.text)


async def test_content_is_hidden_from_strangers_and_anonymous(
    client: Client, seeded: Seeded
) -> None:
    path = f"/api/documents/{seeded.doc_id}/content"
    assert (await client.get(path, headers=bearer(seeded, "stranger"))).status == 404
    assert (await client.get(path)).status == 401
    assert (await client.get(f"{path}?at=-1", headers=bearer(seeded, "owner"))).status == 422
    assert (await client.get(f"{path}?at=abc", headers=bearer(seeded, "owner"))).status == 422


async def test_content_at_an_earlier_seq(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        for word in ("a", "b", "c"):
            editor.text += word
            await asyncio.sleep(0.02)
    response = await client.get(
        f"/api/documents/{seeded.doc_id}/content?at=2", headers=bearer(seeded, "owner")
    )
    assert (await response.json())["text"] == "ab"


async def test_awareness_is_never_written_to_the_log(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
    ):
        for clock in range(1, 20):
            await a.set_presence({"cursor": clock}, clock=clock)
        await b.wait_for(lambda: (b.presence.get(1) or {}).get("cursor") == 19)
    assert (await EventLog(client.app[DATABASE]).head(seeded.doc_id)).seq == 0


@pytest.mark.slow
async def test_expired_token_keeps_an_open_connection_working(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    app = create_app(dataclasses.replace(settings, access_token_ttl=1))
    client = await aiohttp_client(app)
    seeded = await seed(app, {"owner": Role.OWNER, "editor": Role.EDITOR})
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
    ):
        await asyncio.sleep(1 + TOKEN_LEEWAY + 0.5)  # both tokens have now expired
        a.text += "still editing"
        await b.wait_text("still editing")
        # A new connection with the same token is refused.
        async with connect(client, ws_path(seeded, "owner"), client_id=3, sync=False) as again:
            assert await again.wait_closed() == 4401
