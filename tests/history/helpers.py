"""Small helpers the history tests share."""

from __future__ import annotations

import asyncio
from typing import Any

from collab.realtime.keys import CHANGE_SIGNALS, ROOMS
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.pyclient import PyClient
from tests.realtime.seed import Seeded, bearer


async def settle(client: Client, doc_id: str) -> None:
    """Wait until everything the document's room accepted is committed."""
    room = client.app[ROOMS].get(doc_id)
    if room is not None:
        async with asyncio.timeout(5):
            await room.flush()


async def head(client: Client, doc_id: str) -> int:
    """The document's newest committed seq."""
    return (await EventLog(client.app[DATABASE]).head(doc_id)).seq


async def wait_head(client: Client, doc_id: str, seq: int) -> None:
    """Wait until the log reaches ``seq``."""
    async with asyncio.timeout(5):
        while await head(client, doc_id) < seq:
            await client.app[CHANGE_SIGNALS].wait(doc_id, 0.05)


async def type_in(client: Client, seeded: Seeded, pyclient: PyClient, words: list[str]) -> None:
    """Append ``words``, one committed event each."""
    for word in words:
        expected = await head(client, seeded.doc_id) + 1
        pyclient.text += word
        await wait_head(client, seeded.doc_id, expected)


async def call(
    client: Client,
    method: str,
    path: str,
    seeded: Seeded,
    who: str = "owner",
    status: int = 200,
    **kwargs: Any,
) -> Any:
    """Send a request as ``who``; check the status and return the JSON body."""
    headers = bearer(seeded, who) | kwargs.pop("headers", {})
    response = await client.request(method, path, headers=headers, **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


async def expect_error(
    client: Client, method: str, path: str, seeded: Seeded, status: int, **kwargs: Any
) -> dict[str, Any]:
    """A request that must fail with ``status`` and the JSON error shape."""
    body = await call(client, method, path, seeded, kwargs.pop("who", "owner"), status, **kwargs)
    assert set(body) == {"error"} and "code" in body["error"], body
    error: dict[str, Any] = body["error"]
    return error
