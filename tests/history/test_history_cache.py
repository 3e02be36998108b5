"""Character histories kept between requests and extended with newer events."""

from __future__ import annotations

from collab.api.history_cache import HistoryCache
from eventstore import Database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log
from tests.eventstore.test_eventlog import typed


async def test_a_cached_history_is_extended_not_rebuilt(db: Database) -> None:
    async with db.transaction() as conn:
        await create_log(conn, "a")
        await create_log(conn, "b")
    log = EventLog(db)
    updates = typed("abcd")
    await log.append("a", [NewEvent("update", u, "u", "n") for u in updates[:2]])
    cache = HistoryCache(size=1)
    first = await cache.get(log, "a", 2)
    assert (first.seq, first.text_at(2)) == (2, "ab")
    await log.append("a", [NewEvent("update", u, "u", "n") for u in updates[2:]])
    again = await cache.get(log, "a", 2)
    assert again is first and again.seq == 2  # already far enough
    later = await cache.get(log, "a", 4)
    assert later is first and (later.seq, later.text_at(4), later.text_at(1)) == (4, "abcd", "a")
    await cache.get(log, "b", 0)  # evicts "a" (size 1)
    fresh = await cache.get(log, "a", 4)
    assert fresh is not first and fresh.text_at(4) == "abcd"
