"""Wake-ups for readers of a document's log when it moves on this node."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class ChangeSignals:
    """Wakes feeds of a document when an event is committed or relayed here."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False

    def notify(self, doc_id: str) -> None:
        """The document's log moved on."""
        for event in self._waiters.get(doc_id, ()):
            event.set()

    def close(self) -> None:
        """The node is shutting down: wake every feed so it can end."""
        self.closed = True
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def wait(self, doc_id: str, within: float) -> None:
        """Return after a notification or ``within`` seconds, whichever is first."""
        event = asyncio.Event()
        self._waiters[doc_id].add(event)
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            self._waiters[doc_id].discard(event)
            if not self._waiters[doc_id]:
                del self._waiters[doc_id]
