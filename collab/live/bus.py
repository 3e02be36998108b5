"""The node's live event bus: ids, a short replay buffer, and the open streams.

Every change a route commits becomes a :class:`LiveEvent` for one project.
The bus numbers events as they arrive on this node (ids only grow: they
follow the clock in microseconds, so a client resuming on another node
after a failover lands at about the same moment), keeps the last
``capacity`` events of the last ``window`` seconds for ``Last-Event-ID``
resumption, and hands each event to the streams of the project's members.

A stream knows its user's projects. It learns about joins and leaves from
the events themselves: ``member.added`` for its user (and ``project.created``
by its user) adds a project, ``member.removed`` for its user and
``project.deleted`` remove it after delivering that last event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CAPACITY = 1000
DEFAULT_WINDOW_SECONDS = 300.0
# A stream this far behind is a dead or stuck reader: it is ended, and the
# browser's EventSource reconnects and resumes from the buffer.
STREAM_BACKLOG = 1000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One change of one project, as streams send it."""

    id: int
    type: str
    project_id: str
    data: dict[str, Any]
    received_at: float

    def sse(self) -> bytes:
        """The Server-Sent Events form."""
        return f"id: {self.id}\nevent: {self.type}\ndata: {json.dumps(self.data)}\n\n".encode()


@dataclass(eq=False, slots=True)
class LiveStream:
    """What one open ``/api/events`` request receives."""

    user_id: str
    projects: set[str]
    queue: asyncio.Queue[LiveEvent | None] = field(
        default_factory=lambda: asyncio.Queue(STREAM_BACKLOG)
    )

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` if it concerns this user; track joins and leaves."""
        if _joins(event, self.user_id):
            self.projects.add(event.project_id)
        if event.project_id not in self.projects:
            return
        if self.queue.full():
            self.end()  # too far behind: the client resumes with Last-Event-ID
            return
        self.queue.put_nowait(event)
        if _leaves(event, self.user_id):
            self.projects.discard(event.project_id)

    def end(self) -> None:
        """Ask the stream to finish (shutdown, or a reader too far behind)."""
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class LiveBus:
    """Numbers, buffers and fans out this node's live events."""

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep at most ``capacity`` events, none older than ``window`` seconds."""
        self._buffer: deque[LiveEvent] = deque(maxlen=capacity)
        self._window = window
        self._clock = clock
        # Events with ids up to here may have existed but are not buffered:
        # before this node started, or dropped by age or count.
        self._floor = int(clock() * 1_000_000)
        self._last_id = self._floor
        self._streams: set[LiveStream] = set()
        self.closed = False

    def deliver(self, type_: str, project_id: str, data: dict[str, Any]) -> LiveEvent:
        """Number an event that reached this node and hand it to the streams."""
        now = self._clock()
        self._last_id = max(self._last_id + 1, int(now * 1_000_000))
        event = LiveEvent(self._last_id, type_, project_id, data, now)
        if len(self._buffer) == self._buffer.maxlen:
            self._floor = self._buffer[0].id
        self._buffer.append(event)
        for stream in list(self._streams):
            stream.offer(event)
        return event

    def since(self, last_id: int) -> list[LiveEvent] | None:
        """The buffered events after ``last_id``; None when some may be missing."""
        self._expire()
        if last_id < self._floor:
            return None
        return [event for event in self._buffer if event.id > last_id]

    @contextmanager
    def subscribe(self, user_id: str, projects: Iterable[str]) -> Iterator[LiveStream]:
        """An open stream for ``user_id`` until the context ends."""
        stream = LiveStream(user_id, set(projects))
        if self.closed:
            stream.end()
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)

    def close(self) -> None:
        """The node is shutting down: end every stream."""
        self.closed = True
        for stream in list(self._streams):
            stream.end()

    def _expire(self) -> None:
        horizon = self._clock() - self._window
        while self._buffer and self._buffer[0].received_at < horizon:
            self._floor = self._buffer.popleft().id


def _joins(event: LiveEvent, user_id: str) -> bool:
    if event.type == "member.added":
        return event.data.get("user_id") == user_id
    return event.type == "project.created" and event.data.get("owner_id") == user_id


def _leaves(event: LiveEvent, user_id: str) -> bool:
    if event.type == "member.removed":
        return event.data.get("user_id") == user_id
    return event.type == "project.deleted"
