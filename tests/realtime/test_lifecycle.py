"""Connection and room lifecycle: revocation, deletion, limits, shared loads."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.metrics import COMMIT_SECONDS, EVENTS_APPENDED
from collab.realtime.keys import ROOMS
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from tests.conftest import Client
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, bearer, seed, ws_path


async def test_removed_member_is_closed_within_a_second(client: Client, seeded: Seeded) -> None:
    editor_id = seeded.users["editor"].id
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        started = time.perf_counter()
        response = await client.delete(
            f"/api/projects/{seeded.project_id}/members/{editor_id}",
            headers=bearer(seeded, "owner"),
        )
        assert response.status == 204
        assert await editor.wait_closed(within=1.0) == 4403
        assert time.perf_counter() - started < 1.0


async def test_demoted_member_becomes_read_only_at_once(client: Client, seeded: Seeded) -> None:
    editor_id = seeded.users["editor"].id
    async with (
        connect(client, ws_path(seeded, "editor"), client_id=2) as editor,
        connect(client, ws_path(seeded, "owner"), client_id=1) as owner,
    ):
        editor.text += "before "
        await owner.wait_text("before ")
        response = await client.patch(
            f"/api/projects/{seeded.project_id}/members/{editor_id}",
            json={"role": "viewer"},
            headers=bearer(seeded, "owner"),
        )
        assert response.status == 200
        editor.text += "after"
        owner.text += "!"
        await editor.wait_for(lambda: "!" in str(editor.text))
        await asyncio.sleep(0.1)
        assert "after" not in str(owner.text)
    _, text = await document_text(client.app[DATABASE], seeded.doc_id)
    assert "after" not in text


async def test_deleted_document_closes_its_connections(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=2) as editor:
        response = await client.delete(
            f"/api/documents/{seeded.doc_id}", headers=bearer(seeded, "owner")
        )
        assert response.status == 204
        assert await editor.wait_closed(within=1.0) == 4404
    assert client.app[ROOMS].get(seeded.doc_id) is None


async def test_concurrent_first_connections_share_one_load(client: Client, seeded: Seeded) -> None:
    manager = client.app[ROOMS]
    loads = 0
    original = manager._load

    async def counting_load(doc_id: str, project_id: str):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        return await original(doc_id, project_id)

    manager._load = counting_load  # type: ignore[method-assign]
    async with asyncio.TaskGroup() as group:
        clients = [
            group.create_task(_connect_and_hold(client, ws_path(seeded, "editor"), 10 + i))
            for i in range(8)
        ]
    assert loads == 1
    assert all(task.result() for task in clients)


async def _connect_and_hold(client: Client, path: str, client_id: int) -> bool:
    async with connect(client, path, client_id=client_id) as c:
        return c.synced.is_set()


async def test_connections_per_document_are_capped(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    app = create_app(dataclasses.replace(settings, max_connections_per_document=2))
    client = await aiohttp_client(app)
    seeded = await seed(app, {"owner": Role.OWNER})
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1),
        connect(client, ws_path(seeded, "owner"), client_id=2),
        connect(client, ws_path(seeded, "owner"), client_id=3, sync=False) as third,
    ):
        assert await third.wait_closed() == 1013


async def test_client_that_stops_reading_is_disconnected(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    """A peer whose queue fills is closed rather than buffered without bound."""
    unlimited = dataclasses.replace(settings, updates_per_second=1e6, update_burst=100_000)
    app = create_app(unlimited)
    client = await aiohttp_client(app)
    seeded = await seed(app, {"owner": Role.OWNER, "viewer": Role.VIEWER})
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as writer,
        connect(client, ws_path(seeded, "viewer"), client_id=2) as stalled,
    ):
        room = client.app[ROOMS].get(seeded.doc_id)
        assert room is not None
        peer = next(p for p in room.peers.values() if p.user.id == seeded.users["viewer"].id)
        await peer.stop()  # the socket stops draining, as if the client stopped reading
        # 10 updates of 1 MiB overflow its 8 MiB queue, however they are grouped (and
        # fewer than 16 events in a commit go out one message each, not to their author).
        for _ in range(10):
            writer.text += "x" * 1024 * 1024
            await asyncio.sleep(0)
        assert await stalled.wait_closed(within=10) == 1013


async def test_updates_are_committed_in_groups(client: Client, seeded: Seeded) -> None:
    commits_before = _commit_count()
    events_before = EVENTS_APPENDED._value.get()
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
    ):
        for i in range(200):
            a.text += "a"
            b.text += "b"
            if i % 50 == 0:
                await asyncio.sleep(0)
        await b.wait_for(lambda: str(b.text).count("a") == 200, within=10)
        await a.wait_for(lambda: str(a.text).count("b") == 200, within=10)
    events = EVENTS_APPENDED._value.get() - events_before
    commits = _commit_count() - commits_before
    assert events == 400
    assert commits < events / 4
    assert (await EventLog(client.app[DATABASE]).head(seeded.doc_id)).seq == 400


def _commit_count() -> float:
    for metric in COMMIT_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


async def test_send_queue_is_bounded_in_bytes(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    """A few large messages to a stalled peer overflow its byte bound long before 4096 messages."""
    small = dataclasses.replace(settings, max_queued_bytes_per_connection=256 * 1024)
    client = await aiohttp_client(create_app(small))
    seeded = await seed(client.app, {"owner": Role.OWNER, "viewer": Role.VIEWER})
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as writer,
        connect(client, ws_path(seeded, "viewer"), client_id=2) as stalled,
    ):
        room = client.app[ROOMS].get(seeded.doc_id)
        assert room is not None
        peer = next(p for p in room.peers.values() if p.user.id == seeded.users["viewer"].id)
        await peer.stop()  # the socket stops draining, as if the client stopped reading
        for i in range(4):
            writer.text += str(i) * 100_000
        assert await stalled.wait_closed(within=5) == 1013
        assert peer.queued_bytes == 0  # freed at once, not when the socket finally goes
