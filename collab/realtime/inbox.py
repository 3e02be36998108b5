"""Messages from other nodes: where relayed updates, presence and access changes go.

The relay hands every incoming message to :meth:`RelayInbox.deliver`. Messages
are hints: an update is applied only in seq order (its room repairs gaps from
the log), and because pub/sub can lose messages outright, a periodic head
check and a catch-up after every relay reconnect bring rooms back to the log's
head. The check reads the heads of all open rooms in a few batched queries,
never one per room, so idle rooms cost next to nothing. Any message from a
node proves it alive; a node silent for three heartbeats is taken for dead
and its clients' presence removed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from collab.realtime.access import AccessChanges
from collab.realtime.relay import AccessChanged, PresenceChanged, RelayMessage, UpdateCommitted
from collab.realtime.rooms import RoomManager
from eventstore.errors import EventStoreError
from eventstore.eventlog import EventLog

logger = logging.getLogger(__name__)


class RelayInbox:
    """Routes other nodes' messages to this node's rooms and keeps rooms at the head."""

    def __init__(self, rooms: RoomManager, log: EventLog, access: AccessChanges) -> None:
        self._rooms = rooms
        self._log = log
        self._access = access
        self._last_heard: dict[str, float] = {}

    async def deliver(self, message: RelayMessage) -> None:
        """Route one message from another node."""
        self._last_heard[message.node_id] = time.monotonic()
        if isinstance(message, UpdateCommitted):
            room = self._rooms.get(message.doc_id)
            if room is not None:
                await room.relayed_update(message)
        elif isinstance(message, PresenceChanged):
            room = self._rooms.get(message.doc_id)
            if room is not None:
                room.relayed_presence(message)
        elif isinstance(message, AccessChanged):
            await self._access.apply_remote(message)

    async def after_reconnect(self) -> None:
        """The relay was down: messages may be lost, so re-read heads and access."""
        await self.catch_up_all()
        try:
            await self._access.recheck_all()
        except EventStoreError as exc:
            logger.warning("access re-check after relay reconnect failed: %s", exc)

    def forget_silent_nodes(self, silence: float) -> list[str]:
        """Drop the presence of nodes not heard from for ``silence`` seconds."""
        cutoff = time.monotonic() - silence
        gone = [node for node, heard in self._last_heard.items() if heard < cutoff]
        for node in gone:
            logger.info("node %s went silent; removing its clients' presence", node)
            del self._last_heard[node]
            for room in self._rooms.rooms():
                room.forget_remote_presence(node)
        return gone

    async def catch_up_all(self) -> None:
        """Bring every room up to its log's head.

        The heads of all open rooms are read in a few batched queries (never
        one query per room), so thousands of idle rooms cost next to nothing;
        only the rooms that are behind read events.
        """
        rooms = self._rooms.rooms()
        try:
            heads = await self._log.head_seqs([room.doc_id for room in rooms])
        except EventStoreError as exc:
            logger.warning("head check of %d rooms failed: %s", len(rooms), exc)
            return
        for room in rooms:
            head = heads.get(room.doc_id, 0)
            if head <= room.seq or room.closed:
                continue
            try:
                await room.catch_up(through=head)
            except EventStoreError as exc:
                logger.warning("catch-up of %s failed: %s", room.doc_id, exc)

    async def check_heads_forever(self, interval: float, node_silence: float) -> None:
        """Every ``interval`` seconds: catch what the relay never announced, drop dead nodes."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.forget_silent_nodes(node_silence)
                await self.catch_up_all()
            except Exception:  # keep checking whatever one round hit
                logger.exception("head check failed")
