"""Fixtures and helpers of the job tests: a team, documents with text, and polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Text

from auth.access import Role
from eventstore.crdt import TEXT_NAME, new_doc
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.seed import Seeded, seed

# Output of a finished job arrives within this many seconds on these machines
# (a Python start is ~30 ms, Node ~70 ms, plus the sandbox).
SETTLE_SECONDS = 20.0


@pytest.fixture
async def team(client: Client) -> Seeded:
    """A project with a Python document, an owner, an editor, a viewer and a stranger."""
    return await seed(
        client.app,
        {"owner": Role.OWNER, "editor": Role.EDITOR, "viewer": Role.VIEWER, "stranger": None},
    )


def auth(seeded: Seeded, name: str) -> dict[str, str]:
    """The Authorization header of one of the seeded users."""
    return {"Authorization": f"Bearer {seeded.tokens[name]}"}


class DocumentWriter:
    """Edits one document's text by appending events to its log, as an editor would."""

    def __init__(self, client: Client, seeded: Seeded, doc_id: str) -> None:
        self._log = EventLog(client.app[DATABASE])
        self._author = seeded.users["editor"].id
        self._doc_id = doc_id
        self._doc = new_doc()
        self._text = self._doc.get(TEXT_NAME, type=Text)

    async def replace(self, text: str) -> int:
        """Make the text ``text``; returns the seq of the new event."""
        before = self._doc.get_state()
        with self._doc.transaction():
            self._text.clear()
            self._text += text
        event = NewEvent("update", self._doc.get_update(before), self._author, "test-node")
        stored = await self._log.append(self._doc_id, [event])
        return stored[-1].seq


async def submit(
    client: Client, seeded: Seeded, body: dict[str, Any], *, user: str = "editor"
) -> dict[str, Any]:
    """POST /api/jobs, expecting 202; returns the job."""
    if "document_id" not in body:
        body = {"project_id": seeded.project_id, **body}
    response = await client.post("/api/jobs", json=body, headers=auth(seeded, user))
    assert response.status == 202, await response.text()
    job: dict[str, Any] = await response.json()
    return job


async def wait_job(
    client: Client,
    seeded: Seeded,
    job_id: str,
    *,
    until: tuple[str, ...] = ("succeeded", "failed", "timed_out", "cancelled", "error"),
    within: float = SETTLE_SECONDS,
) -> dict[str, Any]:
    """Poll GET /api/jobs/{id} until its status is one of ``until``."""
    async with asyncio.timeout(within):
        while True:
            response = await client.get(f"/api/jobs/{job_id}", headers=auth(seeded, "viewer"))
            assert response.status == 200, await response.text()
            job: dict[str, Any] = await response.json()
            if job["status"] in until:
                return job
            await asyncio.sleep(0.05)


async def run(
    client: Client, seeded: Seeded, body: dict[str, Any], *, within: float = SETTLE_SECONDS
) -> dict[str, Any]:
    """Submit a job and wait until it ends."""
    job = await submit(client, seeded, body)
    return await wait_job(client, seeded, job["id"], within=within)


async def read_events(
    client: Client, seeded: Seeded, job_id: str, *, user: str = "viewer"
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The server-sent events of a job, parsed, until the stream ends."""
    response = await client.get(f"/api/jobs/{job_id}/events", headers=auth(seeded, user))
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


async def collect_events(
    client: Client, seeded: Seeded, job_id: str, *, within: float = SETTLE_SECONDS
) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a job's stream."""
    events = []
    async with asyncio.timeout(within):
        async for event in read_events(client, seeded, job_id):
            events.append(event)
    return events
