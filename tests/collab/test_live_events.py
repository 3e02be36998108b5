"""``GET /api/events``: live lists for every member, resumable, ended at shutdown."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import DummyCookieJar
from pytest_aiohttp import AiohttpClient

from collab.api import events as events_module
from collab.app import create_app
from collab.config import Settings
from collab.live.bus import LiveBus
from collab.live.keys import LIVE_BUS
from tests.auth.fixtures import (
    Account,
    Client,
    add_member,
    assert_error,
    create_account,
    create_document,
    create_project,
)
from tests.collab.sse import SseReader
from tests.conftest import TEST_SECRET


@pytest.fixture
async def node(tmp_path: Path, aiohttp_client: AiohttpClient) -> Client:
    """One node on SQLite."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/collab.db",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
    )
    return await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())


@contextlib.asynccontextmanager
async def stream(
    client: Client, account: Account, last_event_id: str | None = None
) -> AsyncIterator[SseReader]:
    headers = dict(account.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = await client.get("/api/events", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    try:
        yield SseReader(response)
    finally:
        response.close()


async def test_two_members_see_each_others_changes(node: Client) -> None:
    owner, guest, outsider = [await create_account(node, tag) for tag in ("o", "g", "x")]
    async with (
        stream(node, owner) as owner_events,
        stream(node, guest) as guest_events,
        stream(node, outsider) as outsider_events,
    ):
        project_id = await create_project(node, owner, "Shared")
        created = await owner_events.next_of("project.created")
        assert created.data["id"] == project_id and created.data["name"] == "Shared"
        await add_member(node, owner, project_id, guest.email, "editor")
        for reader in (owner_events, guest_events):
            added = await reader.next_of("member.added")
            assert added.data["user_id"] == guest.id and added.data["project_id"] == project_id
        doc_id = await create_document(node, guest, project_id, "notes.py")
        for reader in (owner_events, guest_events):
            doc = await reader.next_of("document.created")
            assert (doc.data["id"], doc.data["name"]) == (doc_id, "notes.py")
        renamed = await node.patch(
            f"/api/documents/{doc_id}", json={"name": "todo.py"}, headers=owner.headers
        )
        assert renamed.status == 200
        assert (await guest_events.next_of("document.updated")).data["name"] == "todo.py"
        # The outsider's first event is about its own project: nothing of the others leaked.
        own = await create_project(node, outsider, "Mine")
        first = await outsider_events.next()
        assert first is not None
        assert (first.type, first.data["id"]) == ("project.created", own)


async def test_trash_and_undelete_are_announced(node: Client) -> None:
    owner, guest = await create_account(node), await create_account(node)
    project_id = await create_project(node, owner)
    await add_member(node, owner, project_id, guest.email, "viewer")
    doc_id = await create_document(node, owner, project_id, "gone.py")
    async with stream(node, guest) as reader:
        deleted = await node.delete(f"/api/documents/{doc_id}", headers=owner.headers)
        assert deleted.status == 204
        assert (await reader.next_of("document.deleted")).data["id"] == doc_id
        back = await node.post(f"/api/documents/{doc_id}/undelete", headers=owner.headers)
        assert back.status == 200
        undeleted = await reader.next_of("document.undeleted")
        assert (undeleted.data["id"], undeleted.data["name"]) == (doc_id, "gone.py")


async def test_ids_increase(node: Client) -> None:
    owner = await create_account(node)
    async with stream(node, owner) as reader:
        ids = []
        for name in ("a", "b", "c"):
            await create_project(node, owner, name)
            ids.append(int((await reader.next_of("project.created")).id))
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_removed_member_stops_receiving(node: Client) -> None:
    owner, guest = await create_account(node), await create_account(node)
    project_id = await create_project(node, owner)
    await add_member(node, owner, project_id, guest.email, "viewer")
    async with stream(node, guest) as reader:
        response = await node.delete(
            f"/api/projects/{project_id}/members/{guest.id}", headers=owner.headers
        )
        assert response.status == 204
        assert (await reader.next_of("member.removed")).data["user_id"] == guest.id
        await create_document(node, owner, project_id)
        own = await create_project(node, guest, "after")
        after = await reader.next()
        assert after is not None and (after.type, after.data["id"]) == ("project.created", own)


async def test_project_deletion_is_announced(node: Client) -> None:
    owner, guest = await create_account(node), await create_account(node)
    project_id = await create_project(node, owner)
    await add_member(node, owner, project_id, guest.email, "viewer")
    async with stream(node, guest) as reader:
        deleted = await node.delete(f"/api/projects/{project_id}", headers=owner.headers)
        assert deleted.status == 204
        assert (await reader.next_of("project.deleted")).data["id"] == project_id


async def test_resume_with_last_event_id(node: Client) -> None:
    owner = await create_account(node)
    async with stream(node, owner) as reader:
        project_id = await create_project(node, owner)
        seen = await reader.next_of("project.created")
    doc_id = await create_document(node, owner, project_id)  # while disconnected
    async with stream(node, owner, last_event_id=seen.id) as resumed:
        missed = await resumed.next()
        assert missed is not None
        assert (missed.type, missed.data["id"]) == ("document.created", doc_id)
        assert int(missed.id) > int(seen.id)


@pytest.mark.parametrize("last_id", ["1", "abc", "-5", "9" * 40, ""])
async def test_unknown_last_event_id_asks_for_a_resync(node: Client, last_id: str) -> None:
    owner = await create_account(node)
    async with stream(node, owner, last_event_id=last_id) as reader:
        project_id = await create_project(node, owner)
        first = await reader.next()
        assert first is not None
        if last_id:
            assert first.type == "resync"
            first = await reader.next()
        assert first is not None and first.data["id"] == project_id


async def test_keep_alive_comments(node: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "KEEPALIVE_SECONDS", 0.05)
    owner = await create_account(node)
    async with stream(node, owner) as reader:
        await create_project(node, owner)
        await reader.next_of("project.created")
        node.app[LIVE_BUS].close()
        assert await reader.next() is None
    assert "connected" in reader.comments


async def test_streams_end_at_shutdown(node: Client) -> None:
    owner = await create_account(node)
    async with stream(node, owner) as reader:
        node.app[LIVE_BUS].close()
        assert await reader.next(within=5) is None


async def test_session_cookie_and_anonymous(node: Client) -> None:
    await assert_error(await node.get("/api/events"), 401)
    owner = await create_account(node)
    response = await node.get(
        "/api/events", headers={"Cookie": f"collab_session={owner.access_token}"}
    )
    assert response.status == 200
    response.close()


def test_buffer_forgets_by_count_and_age() -> None:
    now = [1000.0]
    bus = LiveBus(capacity=3, window=60, clock=lambda: now[0])
    first = bus.deliver("project.updated", "p", {})
    for _ in range(3):
        bus.deliver("project.updated", "p", {})
    assert bus.since(first.id - 1) is None  # the first event was dropped by count
    assert len(bus.since(first.id) or []) == 3
    last = bus.deliver("project.updated", "p", {})
    recent = bus.since(last.id - 1)
    assert recent is not None and recent[-1] == last
    now[0] += 61
    assert bus.since(last.id - 1) is None  # too old
    assert bus.since(last.id) == []


@pytest.mark.postgres
async def test_events_cross_nodes_through_redis(
    postgres_url: str, redis_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=f"test-live-{uuid.uuid4().hex}",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        node_id="node-a",
    )
    node_a = await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())
    node_b = await aiohttp_client(
        create_app(dataclasses.replace(settings, node_id="node-b")), cookie_jar=DummyCookieJar()
    )
    owner, guest = await create_account(node_a), await create_account(node_a)
    project_id = await create_project(node_a, owner)
    async with stream(node_b, guest) as on_b:
        await add_member(node_a, owner, project_id, guest.email, "editor")
        added = await on_b.next_of("member.added")
        assert added.data["project_id"] == project_id
        doc_id = await create_document(node_a, owner, project_id)
        assert (await on_b.next_of("document.created")).data["id"] == doc_id


async def test_accepting_an_invite_starts_the_projects_events(node: Client) -> None:
    owner, guest = await create_account(node), await create_account(node)
    project_id = await create_project(node, owner)
    created = await node.post(
        f"/api/projects/{project_id}/invites", json={"role": "editor"}, headers=owner.headers
    )
    token = (await created.json())["token"]
    async with stream(node, guest) as reader:
        accepted = await node.post(f"/api/invites/{token}/accept", headers=guest.headers)
        assert accepted.status == 200
        added = await reader.next_of("member.added")
        assert (added.data["user_id"], added.data["role"]) == (guest.id, "editor")
        doc_id = await create_document(node, owner, project_id)
        assert (await reader.next_of("document.created")).data["id"] == doc_id


async def test_every_member_sees_a_run_someone_else_started(node: Client) -> None:
    owner, viewer = await create_account(node), await create_account(node)
    project_id = await create_project(node, owner)
    await add_member(node, owner, project_id, viewer.email, "viewer")
    doc_id = await create_document(node, owner, project_id)
    async with stream(node, viewer) as reader:
        submitted = await node.post(
            "/api/jobs", json={"document_id": doc_id}, headers=owner.headers
        )
        assert submitted.status == 202, await submitted.text()
        job_id = (await submitted.json())["id"]
        started = await reader.next_of("job.started")
        assert started.data["id"] == job_id
        assert (started.data["started_by"], started.data["document_id"]) == (owner.id, doc_id)
        follow = await node.get(f"/api/jobs/{job_id}/events", headers=viewer.headers)
        assert follow.status == 200
        follow.close()
        finished = await reader.next_of("job.finished", within=60)
        assert finished.data["id"] == job_id and finished.data["status"] == "succeeded"
        assert finished.data["started_by"] == owner.id
