"""Two nodes (two independent connection pools) appending to one document at
once: seq stays exactly 1..N and the hash chain holds (Postgres row lock)."""

from __future__ import annotations

import asyncio

import pytest

from eventstore import Database, apply_migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log
from eventstore.verify import verify_log

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

PER_NODE = 1500
WRITERS_PER_NODE = 6


async def node_appends(db: Database, node_id: str) -> list[int]:
    log = EventLog(db)
    seqs: list[int] = []

    async def writer(index: int) -> None:
        for i in range(PER_NODE // WRITERS_PER_NODE):
            event = NewEvent("update", f"{node_id}-{index}-{i}".encode(), "u", node_id)
            seqs.extend(e.seq for e in await log.append("doc", [event]))

    await asyncio.gather(*(writer(i) for i in range(WRITERS_PER_NODE)))
    return seqs


async def test_two_nodes_append_thousands_without_gaps_or_duplicates(postgres_url: str) -> None:
    async with open_database(postgres_url) as first, open_database(postgres_url) as second:
        await apply_migrations(first)
        async with first.transaction() as conn:
            await create_log(conn, "doc")
        a, b = await asyncio.gather(node_appends(first, "node-a"), node_appends(second, "node-b"))
        assert sorted(a + b) == list(range(1, 2 * PER_NODE + 1))
        stored = await EventLog(first).read("doc")
        assert [e.seq for e in stored] == list(range(1, 2 * PER_NODE + 1))
        assert {e.node_id for e in stored} == {"node-a", "node-b"}
        # Events here are not Yjs updates, so only the chain and the seqs are checked.
        result = await verify_log(EventLog(first), "doc")
        assert not [p for p in result.problems if "hash" in p or "seq" in p or "head" in p]
