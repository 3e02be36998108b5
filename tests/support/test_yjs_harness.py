"""The Yjs client harness, checked against the npm y-websocket reference server.

If these pass, a failing interop test against collab points at the server, not at the
harness.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pycrdt import Doc, Text, TransactionEvent
from pytest_aiohttp import AiohttpServer

from tests.support.yjs import (
    ReferenceServer,
    YjsClients,
    YjsCommandError,
    YjsTimeoutError,
    node_available,
    reference_server,
    replay_log_with_yjs,
    replay_with_yjs,
)

# In CI a missing node must fail loudly (ensure_node_modules raises), not skip.
pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true",
        reason="needs node and npm",
    ),
    pytest.mark.timeout(60),
]


@pytest.fixture
async def server() -> AsyncIterator[ReferenceServer]:
    async with reference_server() as running:
        yield running


@pytest.fixture
async def yjs() -> AsyncIterator[YjsClients]:
    async with YjsClients() as clients:
        yield clients


@pytest.fixture
def doc_id() -> str:
    return f"doc-{uuid.uuid4().hex[:8]}"


async def connect_all(
    yjs: YjsClients, server: ReferenceServer, doc_id: str, *cids: str
) -> list[int]:
    results = await asyncio.gather(
        *(yjs.connect(cid, server.ws_url, doc_id, token="unused") for cid in cids)
    )
    assert all(result.synced for result in results), results
    return [result.client_id for result in results]


async def test_two_clients_converge_after_concurrent_edits(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    await connect_all(yjs, server, doc_id, "a", "b")
    await yjs.insert("a", 0, "hello")
    await yjs.wait_text("b", "hello")

    await asyncio.gather(yjs.insert("a", 0, "A"), yjs.insert("b", 5, "B"))

    assert await yjs.wait_converged(["a", "b"]) == "AhelloB"


async def test_offline_edits_merge_on_reconnect(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    await connect_all(yjs, server, doc_id, "a", "b")
    await yjs.insert("a", 0, "base")
    await yjs.wait_text("b", "base")
    await yjs.disconnect("a")
    await yjs.disconnect("b")

    await yjs.insert("a", 0, "x")
    await yjs.insert("b", 4, "y")
    await asyncio.sleep(0.2)  # nothing may travel while both are offline
    assert await yjs.text("a") == "xbase"
    assert await yjs.text("b") == "basey"

    assert (await yjs.reconnect("a")).synced
    assert (await yjs.reconnect("b")).synced
    assert await yjs.wait_converged(["a", "b"]) == "xbasey"


async def test_awareness_is_seen_by_the_other_client_and_removed_on_close(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    a_id, _ = await connect_all(yjs, server, doc_id, "a", "b")

    await yjs.awareness_set_field("a", "user", {"name": "Ann", "color": "#f00"})
    states = await yjs.wait_awareness("b", a_id, state={"user": {"name": "Ann", "color": "#f00"}})
    assert states[a_id]["user"]["name"] == "Ann"

    await yjs.close("a")
    states = await yjs.wait_awareness("b", a_id, present=False)
    assert a_id not in states


async def test_random_edits_on_three_clients_converge(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    cids = ["a", "b", "c"]
    await connect_all(yjs, server, doc_id, *cids)

    bursts = await asyncio.gather(
        *(yjs.random_edits(cid, 60, seed, interval_ms=1) for seed, cid in enumerate(cids, 1))
    )
    assert all(burst.inserts + burst.deletes == 60 for burst in bursts)

    text = await yjs.wait_converged(cids)
    assert text
    # A late joiner gets the same document from the server.
    await connect_all(yjs, server, doc_id, "late")
    assert await yjs.text("late") == text


async def test_random_edits_are_deterministic(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    await connect_all(yjs, server, doc_id + "-1", "a")
    await connect_all(yjs, server, doc_id + "-2", "b")

    first = await yjs.random_edits("a", 40, seed=7)
    second = await yjs.random_edits("b", 40, seed=7)

    assert first == second


async def test_replay_of_pycrdt_updates_gives_the_same_text() -> None:
    doc: Doc[Text] = Doc()
    text = doc.get("content", type=Text)
    updates: list[bytes] = []

    def keep(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(keep)
    text += "hello world"
    text.insert(5, ",")
    del text[0:1]
    text += "!"

    replayed_text, state = await replay_with_yjs(updates)

    assert replayed_text == str(text) == "ello, world!"
    rebuilt: Doc[Text] = Doc()
    rebuilt.apply_update(state)
    assert str(rebuilt.get("content", type=Text)) == replayed_text


async def test_replay_keeps_an_update_pending_until_its_predecessor_arrives() -> None:
    doc: Doc[Text] = Doc()
    text = doc.get("content", type=Text)
    updates: list[bytes] = []

    def keep(event: TransactionEvent) -> None:
        updates.append(event.update)

    doc.observe(keep)
    text += "P"
    text += "Q"

    missing_first = await replay_log_with_yjs([updates[1]])
    in_order = await replay_log_with_yjs(updates)

    assert (missing_first.text, missing_first.pending) == ("", True)
    assert (in_order.text, in_order.pending) == ("PQ", False)


def closing_app(code: int, hits: list[int]) -> web.Application:
    """A server that accepts the upgrade and closes at once with ``code``."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        hits.append(1)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=code, message=b"go away")
        return ws

    app = web.Application()
    app.router.add_get("/ws/{doc}", handler)
    return app


@pytest.mark.parametrize(
    ("code", "keep_trying"),
    [(4401, False), (4401, True), (4403, False), (4404, True), (1011, False)],
)
async def test_server_close_code_is_reported_without_reconnects(
    yjs: YjsClients, aiohttp_server: AiohttpServer, code: int, keep_trying: bool
) -> None:
    hits: list[int] = []
    server = await aiohttp_server(closing_app(code, hits))
    url = f"ws://127.0.0.1:{server.port}/ws"

    result = await yjs.connect("a", url, "doc", "bad-token", keep_trying=keep_trying)

    assert (result.synced, result.error) == (False, "closed by server")
    assert (result.close_code, result.close_reason) == (code, "go away")
    await asyncio.sleep(0.8)  # y-websocket would retry after 200 ms, then 400 ms
    status = await yjs.status("a")
    assert (status.attempts, len(hits)) == (1, 1)
    assert not status.should_connect
    assert status.last_close_code == code


async def test_refused_upgrade_reports_the_http_status(
    yjs: YjsClients, aiohttp_server: AiohttpServer
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    app = web.Application()
    app.router.add_get("/ws/{doc}", refuse)
    server = await aiohttp_server(app)

    result = await yjs.connect("a", f"ws://127.0.0.1:{server.port}/ws", "doc", "bad")

    assert (result.synced, result.http_status, result.close_code) == (False, 401, 1006)


async def test_failures_come_back_as_errors_and_node_keeps_running(
    yjs: YjsClients, server: ReferenceServer, doc_id: str
) -> None:
    await connect_all(yjs, server, doc_id, "a")

    with pytest.raises(YjsCommandError, match="outside text"):
        await yjs.insert("a", 5, "x")
    with pytest.raises(YjsCommandError, match="no client"):
        await yjs.text("nobody")
    with pytest.raises(YjsCommandError, match="exists"):
        await yjs.connect("a", server.ws_url, doc_id)
    await yjs.insert("a", 0, "abc")
    with pytest.raises(YjsTimeoutError, match="'abc'"):
        await yjs.wait_text("a", "never", within=0.2)

    assert await yjs.ping() == ["a"]
