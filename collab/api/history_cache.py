"""Recently used character histories, extended instead of rebuilt.

Attribution needs a replay from a log's first event, which takes seconds on
a long log. Logs only grow, so a history kept from an earlier request stays
true and only needs the events committed since; the few most recently used
documents keep theirs in memory.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from aiohttp import web

from eventstore.changes import CharHistory
from eventstore.eventlog import EventLog

DEFAULT_SIZE = 8


class HistoryCache:
    """Character histories of the ``size`` most recently used documents."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[str, CharHistory] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, log: EventLog, doc_id: str, through: int) -> CharHistory:
        """A history of ``doc_id`` reaching at least ``through`` (maybe further).

        Callers read it without awaiting in between: another request may
        extend it at its next await. Seqs it holds never change meaning.

        Raises:
            UnknownLogError: the document has no log.
            UpdateRejectedError: a stored update does not decode.
        """
        lock = self._locks.setdefault(doc_id, asyncio.Lock())
        async with lock:
            history = self._entries.pop(doc_id, None) or CharHistory()
            if history.seq < through:
                await history.extend(log, doc_id, through=through)  # dropped if it fails
            self._entries[doc_id] = history
            while len(self._entries) > self._size:
                evicted, _ = self._entries.popitem(last=False)
                self._locks.pop(evicted, None)
            return history


HISTORY_CACHE = web.AppKey("history_cache", HistoryCache)
