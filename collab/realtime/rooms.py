"""The rooms open on this node: loaded once, shared, unloaded when idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from collab.metrics import ROOMS_LOADED
from collab.realtime import close_codes
from collab.realtime.peer import Peer
from collab.realtime.relay import Relay
from collab.realtime.room import Room, RoomConfig
from collab.realtime.write_guard import WriteGuard
from eventstore.eventlog import EventLog

logger = logging.getLogger(__name__)


class TooManyPeersError(Exception):
    """The document, or this user on it, has as many connections as allowed."""


class RoomManager:
    """Holds one :class:`Room` per open document.

    Concurrent first connections share one load. A room whose last peer left
    is unloaded after ``grace`` seconds (with a final snapshot); a new load of
    the same document waits until the old room has finished committing.
    """

    def __init__(
        self,
        log: EventLog,
        relay: Relay,
        config: RoomConfig,
        *,
        grace: float,
        max_peers: int,
        max_peers_per_user: int | None = None,
        on_advanced: Callable[[str], None] = lambda doc_id: None,
        write_guard: WriteGuard | None = None,
    ) -> None:
        self._log = log
        self._relay = relay
        self._config = config
        self._grace = grace
        self._max_peers = max_peers
        self._max_peers_per_user = max_peers if max_peers_per_user is None else max_peers_per_user
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Task[Room]] = {}
        self._closing: dict[str, asyncio.Task[None]] = {}
        self._unloads: dict[str, asyncio.Task[None]] = {}
        self._on_advanced = on_advanced
        self._write_guard = write_guard

    @property
    def relay(self) -> Relay:
        """The transport between nodes."""
        return self._relay

    def get(self, doc_id: str) -> Room | None:
        """The loaded room of ``doc_id``, if any."""
        return self._rooms.get(doc_id)

    def rooms(self) -> list[Room]:
        """Every loaded room."""
        return list(self._rooms.values())

    async def join(self, doc_id: str, project_id: str, peer: Peer) -> Room:
        """Add ``peer`` to the document's room, loading it if needed.

        A user may hold fewer connections than the document allows, so no
        single account can fill a document and lock the others out.

        Raises:
            TooManyPeersError: the document is full, or this user's share of it is.
            EventStoreError: the log could not be read.
        """
        room = await self._room(doc_id, project_id)
        if len(room.peers) >= self._max_peers:
            raise TooManyPeersError("too many connections to this document")
        if room.peers_of_user(peer.user.id) >= self._max_peers_per_user:
            raise TooManyPeersError("too many connections of this user to this document")
        self._cancel_unload(doc_id)
        room.add(peer)
        return room

    @contextlib.asynccontextmanager
    async def borrow(self, doc_id: str, project_id: str) -> AsyncIterator[Room]:
        """The document's room for a server-side edit; unloaded later if nobody joins."""
        room = await self._room(doc_id, project_id)
        self._cancel_unload(doc_id)
        try:
            yield room
        finally:
            if not room.peers and self._rooms.get(doc_id) is room:
                self._unloads[doc_id] = asyncio.create_task(self._unload_later(room))

    async def leave(self, room: Room, peer: Peer) -> None:
        """Remove ``peer``; schedule the unload when the room is empty."""
        await room.remove(peer)
        if not room.peers and self._rooms.get(room.doc_id) is room:
            self._cancel_unload(room.doc_id)
            self._unloads[room.doc_id] = asyncio.create_task(self._unload_later(room))

    async def _room(self, doc_id: str, project_id: str) -> Room:
        room = self._rooms.get(doc_id)
        if room is not None and not room.closed:
            return room
        task = self._loading.get(doc_id)
        if task is None:
            task = asyncio.create_task(self._load(doc_id, project_id))
            self._loading[doc_id] = task
            task.add_done_callback(lambda _: self._loading.pop(doc_id, None))
        return await asyncio.shield(task)

    async def _load(self, doc_id: str, project_id: str) -> Room:
        closing = self._closing.get(doc_id)
        if closing is not None:
            await asyncio.shield(closing)
        await self._relay.watch(doc_id)
        room = await Room.load(
            doc_id,
            project_id,
            log=self._log,
            relay=self._relay,
            config=self._config,
            on_poisoned=self.forget,
            on_advanced=self._on_advanced,
            write_guard=self._write_guard,
        )
        self._rooms[doc_id] = room
        ROOMS_LOADED.set(len(self._rooms))
        return room

    def forget(self, room: Room) -> None:
        """Drop ``room`` (poisoned or deleted); the next join loads afresh."""
        if self._rooms.get(room.doc_id) is room:
            del self._rooms[room.doc_id]
            ROOMS_LOADED.set(len(self._rooms))

    def _cancel_unload(self, doc_id: str) -> None:
        task = self._unloads.pop(doc_id, None)
        if task is not None:
            task.cancel()

    async def _unload_later(self, room: Room) -> None:
        await asyncio.sleep(self._grace)
        if room.peers or self._rooms.get(room.doc_id) is not room:
            return
        self._unloads.pop(room.doc_id, None)
        self.forget(room)
        closing = asyncio.create_task(self._close_room(room))
        self._closing[room.doc_id] = closing
        closing.add_done_callback(lambda _: self._closing.pop(room.doc_id, None))

    async def _close_room(self, room: Room, code: int = close_codes.RESTARTING) -> None:
        """Commit what is pending, take a final snapshot, and let go."""
        try:
            await room.flush()
            await room.snapshot()
        except Exception as exc:  # the log stays complete; only the snapshot is lost
            logger.warning("final snapshot of %s failed: %s", room.doc_id, exc)
        await room.close(code, "node shutting down")
        if room.doc_id not in self._rooms:
            await self._relay.unwatch(room.doc_id)

    async def close_all(self) -> None:
        """On shutdown: flush and snapshot every room, closing peers with 1012."""
        for task in self._unloads.values():
            task.cancel()
        rooms = list(self._rooms.values())
        self._rooms.clear()
        await asyncio.gather(*(self._close_room(room) for room in rooms))
        for task in list(self._closing.values()):
            with contextlib.suppress(Exception):
                await task
