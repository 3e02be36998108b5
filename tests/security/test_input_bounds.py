"""Integers and nesting are bounded at the edge: 422/400 with details, never a 500.

Runs on both engines (the ``client`` fixture is parametrised over SQLite and
PostgreSQL): a value past 64 bits used to reach the database and fail there.
"""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Text

from auth.access import Role
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.seed import Seeded, bearer, seed

HUGE = [str(2**63), str(2**64), str(2**53), "-1", "1.5", "1e3", "abc", "9" * 400]


@pytest.fixture
async def seeded(client: Client) -> Seeded:
    return await seed(client.app, {"owner": Role.OWNER})


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("history", "after"),
        ("history", "limit"),
        ("changes", "after"),
        ("content", "at"),
    ],
)
async def test_integer_query_out_of_range_is_422(
    client: Client, seeded: Seeded, route: str, name: str, value: str
) -> None:
    response = await client.get(
        f"/api/documents/{seeded.doc_id}/{route}",
        params={name: value},
        headers=bearer(seeded, "owner"),
    )
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert name in error["details"]


@pytest.mark.parametrize("value", [2**63, 2**64, 2**53, -1, 1.5, "abc", 10**400])
@pytest.mark.parametrize("route", ["restore", "fork"])
async def test_integer_body_out_of_range_is_422(
    client: Client, seeded: Seeded, route: str, value: object
) -> None:
    response = await client.post(
        f"/api/documents/{seeded.doc_id}/{route}",
        json={"seq": value, **({"name": "copy.py"} if route == "fork" else {})},
        headers=bearer(seeded, "owner"),
    )
    assert response.status == 422, await response.text()
    assert "seq" in (await response.json())["error"]["details"]


async def test_largest_safe_integer_is_accepted(client: Client, seeded: Seeded) -> None:
    response = await client.get(
        f"/api/documents/{seeded.doc_id}/history",
        params={"after": str(2**53 - 1)},
        headers=bearer(seeded, "owner"),
    )
    assert response.status == 200
    assert (await response.json())["items"] == []


@pytest.mark.parametrize("header", [str(2**63), str(2**64), "9" * 400, "-5", "x"])
async def test_huge_last_event_id_starts_from_the_beginning(
    client: Client, seeded: Seeded, header: str
) -> None:
    doc: Doc[Any] = Doc()
    doc.get("content", type=Text).insert(0, "x")
    event = NewEvent("update", doc.get_update(), seeded.users["owner"].id, "test")
    await EventLog(client.app[DATABASE]).append(seeded.doc_id, [event])
    headers = {**bearer(seeded, "owner"), "Last-Event-ID": header}
    async with client.get(f"/api/documents/{seeded.doc_id}/changes", headers=headers) as response:
        assert response.status == 200
        assert b"id: 1" in await response.content.readuntil(b"\n\n")


@pytest.mark.parametrize("depth", [65, 100_000])
async def test_deeply_nested_body_is_400(client: Client, depth: int) -> None:
    response = await client.post(
        "/api/auth/register",
        data=('{"a":' + "[" * depth + "]" * depth + "}").encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
