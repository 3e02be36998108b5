"""Idle rooms cost (almost) nothing: the head check batches every open room.

A node's periodic head check (the safety net under the relay) used to query
each room's head; now the heads of all open rooms come from a few batched
queries. Queries are counted on the real database through a thin wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from collab.realtime import inbox as inbox_module
from collab.realtime.access import AccessChanges
from collab.realtime.inbox import FULL_SWEEP_ROUNDS, RelayInbox
from collab.realtime.relay import LocalRelay, UpdateCommitted
from collab.realtime.room import Room, RoomConfig
from collab.realtime.rooms import RoomManager
from eventstore.crdt import encode_state, new_doc, replace_text, text_of
from eventstore.database import Connection, Database, Row
from eventstore.eventlog import HEADS_PER_QUERY, EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log

ROOMS = HEADS_PER_QUERY + 500  # two batches


class CountingDatabase:
    """The real database, counting the statements run outside transactions."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect = db.dialect
        self.queries = 0
        self._counted = asyncio.Condition()

    async def reached(self, count: int) -> None:
        """Wait until ``count`` statements have run."""
        async with self._counted:
            await self._counted.wait_for(lambda: self.queries >= count)

    async def _count(self) -> None:
        async with self._counted:
            self.queries += 1
            self._counted.notify_all()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        await self._count()
        return await self._db.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        await self._count()
        return await self._db.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._count()
        return await self._db.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        await self._count()
        return await self._db.execute(sql, *args)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._count()
        await self._db.executemany(sql, rows)

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        self.queries += 1
        return self._db.transaction()

    async def ping(self) -> None:
        await self._db.ping()

    async def close(self) -> None:
        await self._db.close()


async def _create_logs(db: Database, count: int) -> list[str]:
    doc_ids = [f"idle-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    async with db.transaction() as conn:
        for doc_id in doc_ids:
            await create_log(conn, doc_id)
    return doc_ids


@contextlib.asynccontextmanager
async def _open_rooms(manager: RoomManager, doc_ids: list[str]) -> AsyncIterator[list[Room]]:
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(manager.close_all)
        rooms = [await stack.enter_async_context(manager.borrow(d, "p")) for d in doc_ids]
        yield rooms


def _node(db: Database) -> tuple[RoomManager, RelayInbox, CountingDatabase]:
    counting = CountingDatabase(db)
    relay = LocalRelay()
    manager = RoomManager(
        EventLog(db), relay, RoomConfig(node_id="idle-node"), grace=0.05, max_peers=10
    )
    access = AccessChanges(manager, db, relay, "idle-node")
    return manager, RelayInbox(manager, EventLog(counting), access), counting


def _typing_update(text: str) -> bytes:
    doc = new_doc()
    replace_text(doc, text)
    return encode_state(doc)


@pytest.mark.timeout(120)
async def test_head_check_of_many_rooms_is_a_few_queries(db: Database) -> None:
    doc_ids = await _create_logs(db, ROOMS)
    manager, inbox, counting = _node(db)
    async with _open_rooms(manager, doc_ids):
        await inbox.catch_up_all()
    assert counting.queries == math.ceil(ROOMS / HEADS_PER_QUERY)


async def test_head_check_catches_up_only_rooms_behind(db: Database) -> None:
    doc_ids = await _create_logs(db, 3)
    manager, inbox, counting = _node(db)
    async with _open_rooms(manager, doc_ids) as rooms:
        # Another node committed to the second document and its message was lost.
        update = _typing_update("written elsewhere")
        await EventLog(db).append(doc_ids[1], [NewEvent("update", update, "u", "other-node")])
        await inbox.catch_up_all()
        assert [room.seq for room in rooms] == [0, 1, 0]
        assert text_of(rooms[1].doc) == "written elsewhere"
    assert counting.queries == 1  # one head batch (the room reads its events itself)


async def _run_checks(inbox: RelayInbox, counting: CountingDatabase, queries: int) -> None:
    task = asyncio.create_task(inbox.check_heads_forever(0.01, node_silence=60))
    try:
        async with asyncio.timeout(10):
            await counting.reached(queries)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_idle_rooms_are_checked_only_by_the_full_sweep(db: Database) -> None:
    doc_ids = await _create_logs(db, 50)
    manager, inbox, counting = _node(db)
    async with _open_rooms(manager, doc_ids):
        started = asyncio.get_running_loop().time()
        await _run_checks(inbox, counting, 3)
        elapsed = asyncio.get_running_loop().time() - started
    # Three full sweeps of fifty rooms: three queries, not one per room and round.
    assert counting.queries == 3
    assert elapsed >= 3 * FULL_SWEEP_ROUNDS * 0.01


async def test_rooms_that_heard_from_the_relay_are_checked_every_round(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "FULL_SWEEP_ROUNDS", 10_000)
    doc_ids = await _create_logs(db, 3)
    manager, inbox, counting = _node(db)
    log = EventLog(db)
    async with _open_rooms(manager, doc_ids) as rooms:
        # Another node commits twice to the second document; only the first is announced.
        first = await log.append(doc_ids[1], [NewEvent("update", _typing_update("a"), "u", "b")])
        await inbox.deliver(UpdateCommitted("b", doc_ids[1], 1, first[0].update))
        assert rooms[1].seq == 1
        await log.append(doc_ids[1], [NewEvent("update", _typing_update("bc"), "u", "b")])
        await _run_checks(inbox, counting, 2)
        async with asyncio.timeout(5):
            while rooms[1].seq < 2:
                await _run_checks(inbox, counting, counting.queries + 1)
        assert [room.seq for room in rooms] == [0, 2, 0]


async def test_head_check_ignores_documents_without_log(db: Database) -> None:
    log = EventLog(db)
    assert await log.head_seqs([]) == {}
    doc_ids = await _create_logs(db, 2)
    heads = await log.head_seqs([*doc_ids, "no-such-document", "x" * 5000])
    assert heads == {doc_ids[0]: 0, doc_ids[1]: 0}
