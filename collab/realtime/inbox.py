"""Messages from other nodes: where relayed updates, presence and access changes go.

The relay hands every incoming message to :meth:`RelayInbox.deliver`. Messages
are hints: an update is applied only in seq order (its room repairs gaps from
the log), and because pub/sub can lose messages outright, a periodic head
check and a catch-up after every relay reconnect bring rooms back to the log's
head. The check reads heads in batched queries, never one per room, and
learns from the relay which rooms need it often: a live subscription loses
nothing (Redis drops a subscriber it cannot keep up with, and every
resubscription is followed by a full catch-up), so what a lost message can
hide is mostly the tail of another node's burst. Rooms that heard from
another node in the last ``RECENT_SECONDS`` are checked every interval, and
every room every ``FULL_SWEEP_ROUNDS`` intervals; idle rooms cost next to
nothing. Any message from a node proves it alive; a node silent for three
heartbeats is taken for dead and its clients' presence removed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from collab.realtime.access import AccessChanges
from collab.realtime.relay import AccessChanged, PresenceChanged, RelayMessage, UpdateCommitted
from collab.realtime.room import Room
from collab.realtime.rooms import RoomManager
from eventstore.errors import EventStoreError
from eventstore.eventlog import EventLog

logger = logging.getLogger(__name__)

RECENT_SECONDS = 10.0
FULL_SWEEP_ROUNDS = 15


class RelayInbox:
    """Routes other nodes' messages to this node's rooms and keeps rooms at the head."""

    def __init__(self, rooms: RoomManager, log: EventLog, access: AccessChanges) -> None:
        self._rooms = rooms
        self._log = log
        self._access = access
        self._last_heard: dict[str, float] = {}
        self._relayed_at: dict[str, float] = {}

    async def deliver(self, message: RelayMessage) -> None:
        """Route one message from another node."""
        self._last_heard[message.node_id] = time.monotonic()
        if isinstance(message, UpdateCommitted):
            self._relayed_at[message.doc_id] = time.monotonic()
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
        """Bring every room up to its log's head."""
        await self._catch_up(self._rooms.rooms())

    async def _catch_up(self, rooms: list[Room]) -> None:
        """Bring ``rooms`` up to their heads, read in a few batched queries.

        Only the rooms that are behind read events.
        """
        if not rooms:
            return
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

    def _recently_relayed(self) -> list[Room]:
        """Open rooms that heard from another node in the last RECENT_SECONDS."""
        cutoff = time.monotonic() - RECENT_SECONDS
        stale = [doc for doc, heard in self._relayed_at.items() if heard < cutoff]
        for doc_id in stale:
            del self._relayed_at[doc_id]
        rooms = (self._rooms.get(doc_id) for doc_id in self._relayed_at)
        return [room for room in rooms if room is not None]

    async def check_heads_forever(self, interval: float, node_silence: float) -> None:
        """Every ``interval`` seconds: catch what the relay never announced, drop dead nodes."""
        rounds = 0
        while True:
            await asyncio.sleep(interval)
            rounds += 1
            try:
                self.forget_silent_nodes(node_silence)
                if rounds % FULL_SWEEP_ROUNDS == 0:
                    await self.catch_up_all()
                else:
                    await self._catch_up(self._recently_relayed())
            except Exception:  # keep checking whatever one round hit
                logger.exception("head check failed")
