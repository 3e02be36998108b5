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

Renewals (a client repeating its state with a higher clock, every 15 s in
the stock client) are most of the presence traffic of an idle document, and
each one reaching every peer comes back from every peer. They only need to
arrive within the 30 s after which clients drop a state, so they wait up to
``RENEWAL_WAIT_PER_PEER`` per peer of the document (bounded by
``MAX_RENEWAL_WAIT``), or go along with the next change: the work renewals
cost a document then stays about the same however many peers it has.

A y-protocols awareness update is a list of (client id, clock, state)
entries, so a merged message is an ordinary one: clients apply each entry as
if it had come alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from collab.realtime.protocol import AwarenessEntry, encode_awareness

# The shortest time between two presence messages of one document, and how
# much longer it gets per peer (each message is a frame to every peer, and
# comes back from every peer), up to a bound.
PRESENCE_INTERVAL = 0.05
INTERVAL_PER_PEER = 0.001
MAX_INTERVAL = 0.25
# How long renewals may wait for company, per peer of the document, and at most.
RENEWAL_WAIT_PER_PEER = 0.02
MAX_RENEWAL_WAIT = 5.0


class PresenceOutbox:
    """Collects accepted awareness entries and hands them on in batches.

    ``deliver`` gets the encoded awareness update of each batch, at most one
    batch per ``interval`` seconds; ``peers`` says how many peers a batch
    reaches (it sets how long renewals wait).
    """

    __slots__ = (
        "_changes",
        "_deliver",
        "_due",
        "_interval",
        "_last_sent",
        "_peers",
        "_renewals",
        "_sending",
        "_timer",
    )

    def __init__(
        self,
        deliver: Callable[[bytes], Awaitable[None]],
        peers: Callable[[], int],
        interval: float = PRESENCE_INTERVAL,
    ) -> None:
        self._deliver = deliver
        self._peers = peers
        self._interval = interval
        self._changes: dict[int, AwarenessEntry] = {}
        self._renewals: dict[int, AwarenessEntry] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._last_sent = -interval
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, entries: list[AwarenessEntry]) -> None:
        """Send ``entries`` with the next batch (a newer entry replaces an older one)."""
        for entry in entries:
            if _supersedes(entry, self._changes.get(entry.client_id)):
                self._renewals.pop(entry.client_id, None)
                self._changes[entry.client_id] = entry
        if entries:
            loop = asyncio.get_running_loop()
            self._send_at(loop, max(loop.time(), self._last_sent + self._spacing()))

    def add_renewals(self, entries: list[AwarenessEntry]) -> None:
        """Send ``entries`` with the next change, or after the renewal wait."""
        for entry in entries:
            pending = self._changes if entry.client_id in self._changes else self._renewals
            if _supersedes(entry, pending.get(entry.client_id)):
                pending[entry.client_id] = entry
        if entries:
            loop = asyncio.get_running_loop()
            wait = min(MAX_RENEWAL_WAIT, RENEWAL_WAIT_PER_PEER * self._peers())
            self._send_at(loop, max(loop.time() + wait, self._last_sent + self._spacing()))

    def _spacing(self) -> float:
        """The time between two batches, longer in a larger document."""
        return max(self._interval, min(MAX_INTERVAL, INTERVAL_PER_PEER * self._peers()))

    def _send_at(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._timer is not None:
            if self._due <= due:
                return  # an earlier batch takes these along
            self._timer.cancel()
        self._due = due
        # call_at with a time already past still waits for the next turn, so
        # what else arrives in this turn goes along.
        self._timer = loop.call_at(due, self._send)

    def _send(self) -> None:
        self._timer = None
        self._last_sent = asyncio.get_running_loop().time()
        task = asyncio.create_task(self.flush())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        """Hand on what is waiting now (nothing when empty)."""
        entries = [*self._changes.values(), *self._renewals.values()]
        self._changes, self._renewals = {}, {}
        if entries:
            await self._deliver(encode_awareness(entries))


def _supersedes(entry: AwarenessEntry, pending: AwarenessEntry | None) -> bool:
    """Whether ``entry`` replaces ``pending`` for clients (y-protocols' rule).

    A removal made when a connection closes has the clock of the state it
    removes, which may still be waiting here: the removal must win that tie,
    or clients would get the departed cursor instead of its removal.
    """
    if pending is None:
        return True
    return entry.clock > pending.clock or (entry.clock == pending.clock and entry.state is None)
