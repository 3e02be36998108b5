"""The stock y-websocket client (npm ``WebsocketProvider``) against every close path.

It never reconnects after a 44xx close and always reconnects after any other
code, so each close the server makes is checked against what that client
then does: transient conditions must leave it reconnecting, final verdicts
must stop it, and bursts of edits must never close it at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable

import pytest
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.realtime import close_codes
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from tests.conftest import Client
from tests.realtime.seed import Seeded, bearer, seed
from tests.support.traces import utf16_trace
from tests.support.yjs import ClientStatus, YjsClients, YjsCommandError, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(180),
]

TRACE_TXNS = 20_000


def ws_base(client: Client) -> str:
    return str(client.make_url("/ws")).replace("http://", "ws://")


async def wait_logged(client: Client, seeded: Seeded, expected: str, within: float) -> None:
    """Wait until the document rebuilt from the log reads ``expected``."""
    text = None
    try:
        async with asyncio.timeout(within):
            while (text := (await document_text(client.app[DATABASE], seeded.doc_id))[1]) != (  # noqa: ASYNC110
                expected
            ):
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"log has {len(text or '')} chars, expected {len(expected)}") from None


async def status_when(
    yjs: YjsClients, cid: str, predicate: Callable[[ClientStatus], bool], within: float
) -> ClientStatus:
    """Poll the client's status until ``predicate`` holds (the client may not exist yet)."""
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(YjsCommandError):
                status = await yjs.status(cid)
                if predicate(status):
                    return status
            await asyncio.sleep(0.05)


def test_close_code_bands_match_the_stock_client() -> None:
    for code in close_codes.FINAL_CODES:
        assert not close_codes.stock_client_reconnects(code)
    for code in (close_codes.INTERNAL, close_codes.RESTARTING, close_codes.TRY_AGAIN_LATER):
        assert close_codes.stock_client_reconnects(code)
    assert 4429 not in vars(close_codes).values()


async def test_a_trace_burst_converges_at_default_settings(client: Client, seeded: Seeded) -> None:
    """20,000 real transactions sent back to back: slowed by backpressure, never closed."""
    txns, expected = utf16_trace("rustcode", TRACE_TXNS)
    async with YjsClients(command_timeout=120) as yjs:
        assert (await yjs.connect("a", ws_base(client), seeded.doc_id, seeded.tokens["editor"])).ok
        await yjs.edit_txns("a", txns, within=120)
        await wait_logged(client, seeded, expected, within=120)
        status = await yjs.status("a")
        assert status.close_count == 0 and status.attempts == 1, status


async def test_six_hundred_keystrokes_in_a_loop_all_arrive(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        assert (await yjs.connect("a", ws_base(client), seeded.doc_id, seeded.tokens["editor"])).ok
        burst = await yjs.random_edits("a", 600, seed=7, delete_ratio=0.1)
        await wait_logged(client, seeded, burst.text, within=30)
        assert (await yjs.status("a")).close_count == 0


async def test_over_user_cap_gets_1013_reconnects_and_others_get_in(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    capped = dataclasses.replace(
        settings, max_connections_per_document=10, max_connections_per_user_per_document=2
    )
    client = await aiohttp_client(create_app(capped))
    seeded = await seed(client.app, {"viewer": Role.VIEWER, "editor": Role.EDITOR})
    url, doc, token = ws_base(client), seeded.doc_id, seeded.tokens["viewer"]
    async with YjsClients() as yjs:
        assert (await yjs.connect("v1", url, doc, token)).ok
        assert (await yjs.connect("v2", url, doc, token)).ok
        third = asyncio.create_task(yjs.connect("v3", url, doc, token, keep_trying=True, within=20))
        status = await status_when(yjs, "v3", lambda s: s.attempts >= 2, within=15)
        # Refused with 1013 and, being told to try later, the stock client does.
        assert status.last_close_code == close_codes.TRY_AGAIN_LATER
        assert status.terminal_close_code is None
        # Another user still gets in while this one is at its cap.
        assert (await yjs.connect("e", url, doc, seeded.tokens["editor"])).ok
        await yjs.close("v1")
        assert (await third).ok


async def test_revoked_member_gets_4403_and_stops(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        assert (await yjs.connect("e", ws_base(client), seeded.doc_id, seeded.tokens["editor"])).ok
        editor_id = seeded.users["editor"].id
        response = await client.delete(
            f"/api/projects/{seeded.project_id}/members/{editor_id}",
            headers=bearer(seeded, "owner"),
        )
        assert response.status == 204
        status = await status_when(yjs, "e", lambda s: s.terminal_close_code is not None, 5)
        assert status.terminal_close_code == close_codes.FORBIDDEN
        await asyncio.sleep(1.5)  # longer than the stock client's first backoff
        assert (await yjs.status("e")).attempts == 1


async def test_a_reloading_document_1011_is_reconnected(client: Client, seeded: Seeded) -> None:
    from collab.realtime.keys import ROOMS

    async with YjsClients() as yjs:
        assert (await yjs.connect("e", ws_base(client), seeded.doc_id, seeded.tokens["editor"])).ok
        await yjs.insert("e", 0, "kept")
        room = client.app[ROOMS].get(seeded.doc_id)
        assert room is not None
        await room.flush()
        room.poison("test")
        status = await status_when(yjs, "e", lambda s: s.attempts >= 2 and s.synced, 10)
        assert status.last_close_code == close_codes.INTERNAL
        await yjs.insert("e", 0, "more ")
        await wait_logged(client, seeded, "more kept", within=10)


@pytest.mark.parametrize(
    ("who", "doc", "code"),
    [
        ("garbage-token", "seeded", close_codes.UNAUTHORIZED),
        ("stranger", "seeded", close_codes.NOT_FOUND),
        ("owner", "unknown-document", close_codes.NOT_FOUND),
    ],
)
async def test_final_refusals_stop_the_stock_client(
    client: Client, seeded: Seeded, who: str, doc: str, code: int
) -> None:
    token = seeded.tokens.get(who, who)
    doc_id = seeded.doc_id if doc == "seeded" else doc
    async with YjsClients() as yjs:
        result = await yjs.connect("c", ws_base(client), doc_id, token, keep_trying=True, within=3)
        assert not result.ok and result.close_code == code
        status = await status_when(yjs, "c", lambda s: s.terminal_close_code is not None, 3)
        assert status.terminal_close_code == code
        await asyncio.sleep(1.0)  # longer than the stock client's first backoff
        assert (await yjs.status("c")).attempts == 1


async def test_full_document_gets_1013_and_the_stock_client_retries(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    full = dataclasses.replace(
        settings, max_connections_per_document=1, max_connections_per_user_per_document=1
    )
    client = await aiohttp_client(create_app(full))
    seeded = await seed(client.app, {"owner": Role.OWNER, "editor": Role.EDITOR})
    url, doc = ws_base(client), seeded.doc_id
    async with YjsClients() as yjs:
        assert (await yjs.connect("o", url, doc, seeded.tokens["owner"])).ok
        late = asyncio.create_task(
            yjs.connect("e", url, doc, seeded.tokens["editor"], keep_trying=True, within=20)
        )
        status = await status_when(yjs, "e", lambda s: s.attempts >= 2, within=15)
        assert status.last_close_code == close_codes.TRY_AGAIN_LATER
        assert status.terminal_close_code is None
        await yjs.close("o")
        assert (await late).ok
