"""A room is one open document on this node: its pycrdt ``Doc``, its peers,
and the pipeline that commits their updates to the log before anyone sees them.

Invariants:

* ``seq`` is a watermark (:class:`SeqWatermark`): every event with
  ``seq <= room.seq`` is in ``doc``.
* Updates are applied to ``doc`` on arrival (that is how we learn whether they
  change anything) but reach other peers and the relay only after their
  commit. A sync step 2 is only answered when nothing is uncommitted.
* If a commit fails or yrs fails mid-update, ``doc`` can no longer be trusted:
  the room is *poisoned*, its peers are closed (they reconnect and resend what
  the log lacks) and the next connection reloads from the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, TransactionEvent, merge_updates

from collab.metrics import COMMIT_SECONDS, EVENTS_APPENDED
from collab.realtime import close_codes
from collab.realtime.peer import Outgoing, Peer
from collab.realtime.presence import REMOTE_PREFIX, Identity, Presence
from collab.realtime.presence_outbox import PresenceOutbox
from collab.realtime.protocol import (
    AwarenessMessage,
    Message,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    awareness_message,
    decode_awareness,
    encode_awareness,
    read_awareness,
    sync_message,
)
from collab.realtime.relay import PresenceChanged, Relay, UpdateCommitted
from collab.realtime.update_check import check_state_vector, check_update
from collab.realtime.watermark import SeqWatermark
from collab.realtime.write_guard import WriteGuard
from eventstore.crdt import (
    EMPTY_UPDATE,
    UpdateRejectedError,
    apply_update,
    encode_state,
    guarded,
    replace_text,
)
from eventstore.eventlog import EventLog
from eventstore.events import EventKind, NewEvent, StoredEvent
from eventstore.replay import rebuild

logger = logging.getLogger(__name__)


# Events per commit transaction, and the largest batch sent as separate messages.
MAX_BATCH = 1000
MAX_SEPARATE_MESSAGES = 16
# From this share of ``max_pending`` on, a writer's next update waits for the
# committer (its socket is not read meanwhile, so TCP slows the client down)
# instead of being refused; only a wait longer than ``overload_wait`` refuses.
BACKPRESSURE_SHARE = 0.5


class RoomClosedError(Exception):
    """The room was poisoned or unloaded; the peer should reconnect."""


class OverloadedError(Exception):
    """Too many uncommitted updates are queued (the database is slow or down)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomConfig:
    """Per-node settings every room shares."""

    node_id: str
    snapshot_every: int = 500
    commit_window: float = 0.0
    max_pending: int = 10_000
    overload_wait: float = 10.0


@dataclass(frozen=True, slots=True)
class ServerEdit:
    """Who and what a server-side edit is, for its event.

    Attributes:
        kind: The event kind (``restore``, ``rollback``, ``edit``, ``merge``, …).
        author_id: The user it is committed as.
        source: The tool or agent that made it, if declared.
        meta: Extra facts stored with the event (e.g. what was merged).
        always: Commit an event even when the edit changes nothing.
    """

    kind: EventKind
    author_id: str
    source: str | None = None
    meta: dict[str, Any] | None = None
    always: bool = True


@dataclass(slots=True)
class _Pending:
    update: bytes
    author_id: str
    origin: Peer | None
    kind: EventKind = "update"
    committed: asyncio.Future[int] | None = None
    source: str | None = None
    meta: dict[str, Any] | None = None


class Room:
    """One document held in memory and everyone editing it on this node."""

    def __init__(
        self,
        doc_id: str,
        project_id: str,
        doc: Doc[Any],
        *,
        seq: int,
        snapshot_seq: int,
        log: EventLog,
        relay: Relay,
        config: RoomConfig,
        on_poisoned: Callable[[Room], None] = lambda room: None,
        on_advanced: Callable[[str], None] = lambda doc_id: None,
        write_guard: WriteGuard | None = None,
    ) -> None:
        self.doc_id = doc_id
        self.project_id = project_id
        self.doc = doc
        self.watermark = SeqWatermark(seq)
        self.peers: dict[str, Peer] = {}
        # Peers per user id, kept with ``peers`` so a join need not count them.
        self._peers_per_user: Counter[str] = Counter()
        self.presence = Presence()
        self._presence_outbox = PresenceOutbox(self._send_presence, lambda: len(self.peers))
        self.closed = False
        self._on_poisoned = on_poisoned
        self._on_advanced = on_advanced
        self._snapshot_seq = snapshot_seq
        self._log = log
        self._relay = relay
        self._config = config
        self._write_guard = write_guard
        self._captured: list[bytes] = []
        self._pending: list[_Pending] = []
        self._committer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._progress = asyncio.Event()
        self._catch_up_lock = asyncio.Lock()
        self._sources: dict[str, str] = {}
        self._subscription = doc.observe(self._capture)

    @classmethod
    async def load(
        cls,
        doc_id: str,
        project_id: str,
        *,
        log: EventLog,
        relay: Relay,
        config: RoomConfig,
        on_poisoned: Callable[[Room], None] = lambda room: None,
        on_advanced: Callable[[str], None] = lambda doc_id: None,
        write_guard: WriteGuard | None = None,
    ) -> Room:
        """Build the room from the newest snapshot plus the events after it."""
        rebuilt = await rebuild(log, doc_id)
        return cls(
            doc_id,
            project_id,
            rebuilt.doc,
            seq=rebuilt.seq,
            snapshot_seq=rebuilt.snapshot_seq,
            log=log,
            relay=relay,
            config=config,
            on_poisoned=on_poisoned,
            on_advanced=on_advanced,
            write_guard=write_guard,
        )

    @property
    def seq(self) -> int:
        """Every event up to this seq is in ``doc``."""
        return self.watermark.seq

    def _capture(self, event: TransactionEvent) -> None:
        self._captured.append(event.update)

    # -- peers ---------------------------------------------------------------

    def add(self, peer: Peer) -> None:
        """Greet a new peer: our state vector (sync step 1) and who is here."""
        self._require_open()
        self.peers[peer.id] = peer
        self._peers_per_user[peer.user.id] += 1
        peer.send(sync_message(SyncType.STEP1, self.doc.get_state()))
        present = self.presence.current_message()
        if present is not None:
            peer.send(present)

    def peers_of_user(self, user_id: str) -> int:
        """How many of the peers are connections of ``user_id``."""
        return self._peers_per_user[user_id]

    def declare_source(self, peer: Peer, source: str) -> None:
        """Label every event ``peer`` produces with ``source`` (e.g. ``ai:assistant``)."""
        self._sources[peer.id] = source

    async def remove(self, peer: Peer) -> None:
        """Forget a peer and tell everyone its cursors are gone."""
        if self.peers.pop(peer.id, None) is not None:
            self._peers_per_user[peer.user.id] -= 1
            if not self._peers_per_user[peer.user.id]:
                del self._peers_per_user[peer.user.id]
        self._sources.pop(peer.id, None)
        self._presence_outbox.add(self.presence.remove_owner(peer.id))

    # -- messages from peers -------------------------------------------------

    async def receive(self, peer: Peer, message: Message) -> None:
        """Handle one decoded message from ``peer``.

        Raises:
            ProtocolError: the message is malformed (close with 4400).
            RoomClosedError: the room went away meanwhile.
            OverloadedError: too much is waiting to be committed.
            AccessRevokedError: the peer is no longer a member (close with 4403).
        """
        self._require_open()
        if isinstance(message, SyncMessage):
            if message.subtype is SyncType.STEP1:
                await self._answer_step1(peer, message.payload)
            elif await self._may_write(peer):
                await self._wait_for_committer()
                self._accept_update(peer, message.payload)
            # A viewer's updates are dropped: never applied, stored or relayed.
        elif isinstance(message, AwarenessMessage):
            self._accept_presence(peer, message.payload)
        elif isinstance(message, QueryAwarenessMessage):
            peer.send(self.presence.current_message() or awareness_message(encode_awareness([])))

    async def _may_write(self, peer: Peer) -> bool:
        if self._write_guard is not None and peer.can_write:
            await self._write_guard.refresh(peer, self.project_id)
        return peer.can_write

    async def _answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        check_state_vector(state_vector)
        if peer.awaiting_step2:
            # The reply still queued, plus the updates broadcast after it, already
            # bring this peer up to date: a repeated step 1 must not queue another
            # copy of the whole document.
            return
        # Answer only when everything in ``doc`` is committed, so a new peer
        # never sees an update before the log has it.
        while not self._idle.is_set():
            await self._idle.wait()
        self._require_open()
        try:
            diff = guarded(lambda: self.doc.get_update(state_vector))
        except UpdateRejectedError:
            raise ProtocolError("state vector rejected") from None
        peer.send(sync_message(SyncType.STEP2, diff), step2=True)

    async def _wait_for_committer(self) -> None:
        """Hold a writer while the committer is far behind (backpressure, not refusal).

        Raises:
            OverloadedError: still far behind after ``overload_wait`` (the database is stuck).
            RoomClosedError: the room went away meanwhile.
        """
        high_water = self._config.max_pending * BACKPRESSURE_SHARE
        try:
            async with asyncio.timeout(self._config.overload_wait):
                while len(self._pending) >= high_water and not self.closed:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise OverloadedError("the committer is stuck") from None
        self._require_open()

    def _accept_update(self, peer: Peer, update: bytes) -> None:
        check_update(update)
        if len(self._pending) >= self._config.max_pending:
            raise OverloadedError("too many uncommitted updates")
        self._captured.clear()
        try:
            apply_update(self.doc, update)
        except UpdateRejectedError as exc:
            if exc.panicked:  # yrs may have integrated part of it
                self.poison(f"yrs panicked on an update: {exc}")
            self._captured.clear()
            raise ProtocolError("update rejected") from None
        effective, self._captured = self._captured, []
        source = self._sources.get(peer.id)
        for change in effective:
            self._pending.append(_Pending(change, peer.user.id, peer, source=source))
        if effective:
            self._start_committer()

    def _accept_presence(self, peer: Peer, payload: bytes) -> None:
        identity = Identity(peer.id, peer.user.id, peer.user.display_name)
        # Echoed to the sender too: the stock client drops a link that has
        # been silent for 30 s, and its own 15-second awareness renewal
        # coming back is what keeps a lone client's link alive.
        accepted = self.presence.accept(identity, read_awareness(payload))
        self._presence_outbox.add(accepted.changes)
        self._presence_outbox.add_renewals(accepted.renewals)

    async def _send_presence(self, payload: bytes) -> None:
        """Send a batch of accepted presence changes to every peer and to the other nodes."""
        self.broadcast(awareness_message(payload))
        await self._relay.publish(PresenceChanged(self._config.node_id, self.doc_id, payload))

    def broadcast(self, message: bytes, *, exclude: Peer | None = None) -> None:
        """Send ``message`` to every peer but ``exclude`` (framed once for all)."""
        outgoing = Outgoing(message)
        for peer in list(self.peers.values()):
            if peer is not exclude:
                peer.send(outgoing)

    # -- committing ----------------------------------------------------------

    def _start_committer(self) -> None:
        self._idle.clear()
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop(), name=f"commit-{self.doc_id}")

    async def _commit_loop(self) -> None:
        """Commit what is pending, in groups that adapt to the load.

        Nothing waits on a timer by default: an update arriving at an idle room
        commits at once, and the updates that arrive while a commit is in flight
        form the next group, so groups grow with the load on their own. A
        non-zero ``commit_window`` adds a fixed wait before each group (fewer,
        larger commits at the cost of that much latency).
        """
        batch: list[_Pending] = []
        try:
            while self._pending and not self.closed:
                if self._config.commit_window:
                    await asyncio.sleep(self._config.commit_window)
                size = min(MAX_BATCH, self._log.quick_batch or MAX_BATCH)
                batch = self._pending[:size]
                self._pending = self._pending[size:]
                with COMMIT_SECONDS.time():
                    stored = await self._log.append(
                        self.doc_id,
                        [
                            NewEvent(
                                p.kind,
                                p.update,
                                p.author_id,
                                self._config.node_id,
                                p.meta,
                                p.source,
                            )
                            for p in batch
                        ],
                    )
                EVENTS_APPENDED.inc(len(stored))
                self._progress.set()
                await self._after_commit(batch, stored)
        except Exception as exc:
            logger.warning("commit to %s failed: %s", self.doc_id, exc)
            self._fail_waiters(batch + self._pending, exc)
            self.poison("commit failed")
        finally:
            self._progress.set()  # waiting writers re-check (and see a poisoned room)
            if not self._pending:
                self._idle.set()

    async def _after_commit(self, batch: list[_Pending], stored: list[StoredEvent]) -> None:
        for pending, event in zip(batch, stored, strict=True):
            self.watermark.mark(event.seq)
            if pending.committed is not None and not pending.committed.done():
                pending.committed.set_result(event.seq)
        # Local peers first: the relay only queues, but its messages are not
        # on the path of anyone connected here.
        self._broadcast_committed(batch, stored)
        for event in stored:
            await self._relay.publish(
                UpdateCommitted(self._config.node_id, self.doc_id, event.seq, event.update)
            )
        self._on_advanced(self.doc_id)
        if self.watermark.has_gap:
            # Another node committed in between; fetch its events now.
            await self.catch_up()
        await self._snapshot_if_due()

    @staticmethod
    def _fail_waiters(pending: list[_Pending], exc: Exception) -> None:
        for item in pending:
            if item.committed is not None and not item.committed.done():
                item.committed.set_exception(exc)

    async def restore(self, target: str, author_id: str, source: str | None = None) -> int:
        """Make the text equal to ``target`` with one ``restore`` event; return its seq.

        The edit is computed against the text as it is now, so history is never
        rewritten and connected clients see the change live.
        """
        edit = ServerEdit("restore", author_id, source)
        seq = await self.commit_edit(edit, lambda doc: replace_text(doc, target))
        return self.seq if seq is None else seq  # an ``always`` edit has a seq

    async def commit_edit(self, edit: ServerEdit, change: Callable[[Doc[Any]], None]) -> int | None:
        """Run ``change`` on the document and commit what it did as ONE event.

        The event goes through the same commit-then-broadcast pipeline as a
        peer's update, so connected clients see it live once it is stored.

        Returns:
            The new event's seq, or None when ``change`` changed nothing and
            ``edit.always`` is False (an ``always`` edit commits even empty).

        Raises:
            UpdateRejectedError: yrs refused the change (the room is poisoned
                if yrs panicked part-way).
            RoomClosedError: the room was closed.
        """
        self._require_open()
        self._captured.clear()
        try:
            guarded(lambda: change(self.doc))
        except UpdateRejectedError as exc:
            self._captured.clear()
            if exc.panicked:
                self.poison(f"yrs panicked during a server edit: {exc}")
            raise
        captured, self._captured = self._captured, []
        if not captured and not edit.always:
            return None
        effective = merge_updates(*captured) if captured else EMPTY_UPDATE
        committed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Pending(effective, edit.author_id, None, edit.kind, committed, edit.source, edit.meta)
        )
        self._start_committer()
        return await committed

    def _broadcast_committed(self, batch: list[_Pending], stored: list[StoredEvent]) -> None:
        """Send a committed batch to the peers.

        A few events go one message each, skipping their author. A large batch
        (after the database stalled, say) goes as one merged update to
        everyone, so it cannot flood the peers' bounded queues; an author
        receiving its own update back is a no-op in Yjs.
        """
        if len(stored) <= MAX_SEPARATE_MESSAGES:
            for pending, event in zip(batch, stored, strict=True):
                self.broadcast(sync_message(SyncType.UPDATE, event.update), exclude=pending.origin)
            return
        merged = merge_updates(*(event.update for event in stored))
        self.broadcast(sync_message(SyncType.UPDATE, merged))

    async def flush(self) -> None:
        """Wait until every accepted update is committed (or the room closed)."""
        while not self._idle.is_set():
            await self._idle.wait()

    # -- other nodes ---------------------------------------------------------

    async def relayed_update(self, message: UpdateCommitted) -> None:
        """Apply another node's committed update, repairing any gap from the log."""
        if self.watermark.contains(message.seq) or self.closed:
            return
        if self.watermark.is_next(message.seq) and not self._catch_up_lock.locked():
            self._apply_committed(message.seq, message.update)
            return
        await self.catch_up(through=message.seq)

    async def catch_up(self, *, through: int | None = None) -> int:
        """Apply every committed event after the watermark (up to ``through``).

        Returns:
            How many events were applied.
        """
        async with self._catch_up_lock:
            if through is not None and through <= self.seq:
                return 0
            events = await self._log.read(self.doc_id, after=self.seq, through=through)
            applied = 0
            for event in events:
                if self.closed:
                    break
                if self.watermark.contains(event.seq):
                    self.watermark.mark(event.seq)
                    continue
                self._apply_committed(event.seq, event.update)
                applied += 1
            return applied

    def _apply_committed(self, seq: int, update: bytes) -> None:
        try:
            apply_update(self.doc, update)
        except UpdateRejectedError as exc:
            self.poison(f"committed event {seq} rejected: {exc}")
            return
        finally:
            self._captured.clear()
        self.watermark.mark(seq)
        self.broadcast(sync_message(SyncType.UPDATE, update))
        self._on_advanced(self.doc_id)

    def relayed_presence(self, message: PresenceChanged) -> None:
        """Show another node's presence update to our peers."""
        identity_owner = f"{REMOTE_PREFIX}{message.node_id}"
        try:
            entries = decode_awareness(message.payload)
        except ProtocolError:
            return
        for entry in entries:
            self.presence.adopt(identity_owner, entry)
        self.broadcast(awareness_message(message.payload))

    def forget_remote_presence(self, node_id: str) -> None:
        """A node went silent: remove its clients' cursors for our peers."""
        removed = self.presence.remove_owner(f"{REMOTE_PREFIX}{node_id}")
        if removed:
            self.broadcast(awareness_message(encode_awareness(removed)))

    # -- snapshots and lifecycle ----------------------------------------------

    async def _snapshot_if_due(self) -> None:
        if self.seq - self._snapshot_seq >= self._config.snapshot_every:
            await self.snapshot()

    async def snapshot(self) -> bool:
        """Store the state at ``seq`` if the doc is exactly that (nothing pending or ahead)."""
        if self._pending or self.watermark.has_gap or self.seq <= self._snapshot_seq or self.closed:
            return False
        seq, state = self.seq, encode_state(self.doc)
        await self._log.save_snapshot(self.doc_id, seq, state)
        self._snapshot_seq = max(self._snapshot_seq, seq)
        return True

    def poison(self, reason: str) -> None:
        """Stop trusting ``doc``: close every peer so they resync from a reload."""
        if self.closed:
            return
        logger.warning("room %s poisoned: %s", self.doc_id, reason)
        self.close_peers(close_codes.INTERNAL, "document reloading")
        self._on_poisoned(self)

    async def close(self, code: int, reason: str) -> None:
        """Mark the room closed and close every peer (the close frames are written at once)."""
        self.close_peers(code, reason)

    def close_peers(self, code: int, reason: str) -> None:
        """Mark the room closed and close every peer with ``code``."""
        self.closed = True
        self._idle.set()
        self._progress.set()
        for peer in list(self.peers.values()):
            peer.close(code, reason)

    def _require_open(self) -> None:
        if self.closed:
            raise RoomClosedError(self.doc_id)
