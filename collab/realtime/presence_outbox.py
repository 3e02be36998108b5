"""Presence changes of one document, sent together as one awareness message.

Every awareness change used to be one message to every peer of the document.
When many clients join at once (a reconnect storm) that is one message per
newcomer to each of the document's clients, O(n²) frames, and the stock
client makes it worse: it sends back to the server every change it receives,
so each of those frames also comes back as a frame to read. Instead, a
document sends at most one presence message per ``PRESENCE_INTERVAL``: the
changes accepted meanwhile are merged (only the newest entry per client id is
kept) and go out together, one frame per peer, whose copies the clients then
send back once.

A change arriving after a quiet interval goes out at the end of the current
turn of the event loop, so a lone cursor is not slowed down; only changes
that follow each other closely wait, for at most the interval.

A y-protocols awareness update is a list of (client id, clock, state)
entries, so a merged message is an ordinary one: clients apply each entry as
if it had come alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from collab.realtime.protocol import AwarenessEntry, encode_awareness

# The shortest time between two presence messages of one document.
PRESENCE_INTERVAL = 0.05


class PresenceOutbox:
    """Collects accepted awareness entries and hands them on in batches.

    ``deliver`` gets the encoded awareness update of each batch, at most one
    batch per ``interval`` seconds.
    """

    __slots__ = ("_deliver", "_entries", "_interval", "_last_sent", "_sender")

    def __init__(
        self, deliver: Callable[[bytes], Awaitable[None]], interval: float = PRESENCE_INTERVAL
    ) -> None:
        self._deliver = deliver
        self._interval = interval
        self._entries: dict[int, AwarenessEntry] = {}
        self._sender: asyncio.Task[None] | None = None
        self._last_sent = -interval

    def add(self, entries: list[AwarenessEntry]) -> None:
        """Send ``entries`` with the next batch (a newer entry replaces an older one)."""
        if not entries:
            return
        for entry in entries:
            self._entries[entry.client_id] = entry
        if self._sender is None:
            wait = self._last_sent + self._interval - asyncio.get_running_loop().time()
            self._sender = asyncio.create_task(self._send_after(max(0.0, wait)))

    async def _send_after(self, wait: float) -> None:
        try:
            # Even without a wait, what else arrives in this turn goes along.
            await asyncio.sleep(wait)
        finally:
            self._sender = None
        self._last_sent = asyncio.get_running_loop().time()
        await self.flush()

    async def flush(self) -> None:
        """Hand on what is waiting now (nothing when empty)."""
        entries, self._entries = self._entries, {}
        if entries:
            await self._deliver(encode_awareness(list(entries.values())))
