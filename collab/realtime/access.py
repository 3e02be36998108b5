"""Access changes applied to open connections, on this node and on the others.

Routes that remove or demote a member, or delete documents, call
:class:`AccessChanges` after their transaction commits. A removed member's
connections close with 4403; a demoted one's become read-only at once (their
updates are dropped from then on); connections to a deleted document close
with 4404. Other nodes hear of it through the relay. Because the relay may
lose messages, :meth:`AccessChanges.recheck_all` re-reads the roles of every
open connection after the relay reconnects and, as a backstop, periodically
(:meth:`AccessChanges.recheck_forever`). A re-check costs two queries per
:data:`eventstore.database.IDS_PER_QUERY` open documents (whether they all still exist, and their
projects' members; a third for the ids when some were deleted), however many
projects and connections there are: a node holding ten thousand quiet rooms
must not poll the database per project.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from auth.access import Role, project_role
from collab.realtime import close_codes
from collab.realtime.relay import AccessChanged, Relay
from collab.realtime.rooms import RoomManager
from eventstore import Connection
from eventstore.database import ID_PARAMETERS, padded_chunks

logger = logging.getLogger(__name__)

_MEMBERS = (
    f"SELECT project_id, user_id, role FROM project_members WHERE project_id IN ({ID_PARAMETERS})"  # noqa: S608
)
_DOCUMENTS = f"SELECT id FROM documents WHERE id IN ({ID_PARAMETERS})"  # noqa: S608
_COUNT_DOCUMENTS = f"SELECT count(*) FROM documents WHERE id IN ({ID_PARAMETERS})"  # noqa: S608


class AccessChanges:
    """Applies role changes and deletions to the peers of this node's rooms."""

    def __init__(self, rooms: RoomManager, db: Connection, relay: Relay, node_id: str) -> None:
        self._rooms = rooms
        self._db = db
        self._relay = relay
        self._node_id = node_id

    async def member_changed(self, project_id: str, user_id: str) -> None:
        """A member of ``project_id`` was removed or had their role changed."""
        await self.apply_member(project_id, user_id)
        await self._relay.publish(AccessChanged(self._node_id, project_id, user_id))

    async def documents_deleted(self, doc_ids: list[str]) -> None:
        """These documents are gone: close their connections with 4404, here and elsewhere."""
        self.close_deleted(doc_ids)
        if doc_ids:
            await self._relay.publish(AccessChanged(self._node_id, "", None, tuple(doc_ids)))

    async def apply_remote(self, message: AccessChanged) -> None:
        """Apply a change another node announced."""
        if message.doc_ids:
            self.close_deleted(list(message.doc_ids))
        if message.user_id is not None:
            await self.apply_member(message.project_id, message.user_id)

    async def apply_member(self, project_id: str, user_id: str) -> None:
        """Re-read the member's role and apply it to their open connections here."""
        affected = [
            peer
            for room in self._rooms.rooms()
            if room.project_id == project_id
            for peer in room.peers.values()
            if peer.user.id == user_id
        ]
        if not affected:
            return
        role = await project_role(self._db, project_id, user_id)
        for peer in affected:
            if role is None:
                peer.close(close_codes.FORBIDDEN, "access revoked")
            else:
                peer.role = role

    async def recheck_all(self) -> None:
        """Re-read the role of every open connection, in a few batched queries."""
        rooms = self._rooms.rooms()
        deleted = await self._deleted_documents([room.doc_id for room in rooms])
        self.close_deleted([room.doc_id for room in rooms if room.doc_id in deleted])
        live = [room for room in rooms if room.doc_id not in deleted]
        roles = await self._roles({room.project_id for room in live})
        now = time.monotonic()
        for room in live:
            members = roles.get(room.project_id, {})
            for peer in list(room.peers.values()):
                role = members.get(peer.user.id)
                if role is None:
                    peer.close(close_codes.FORBIDDEN, "access revoked")
                else:
                    peer.role = role
                    peer.role_checked_at = now

    async def _deleted_documents(self, doc_ids: list[str]) -> set[str]:
        """Which of ``doc_ids`` no longer exist.

        Usually none: one count per chunk says so without reading the ids back
        (reading 10,000 ids every 10 seconds was a third of an idle node's CPU).
        """
        deleted: set[str] = set()
        for chunk in padded_chunks(doc_ids):
            wanted = {doc_id for doc_id in chunk if doc_id is not None}
            if await self._db.fetchval(_COUNT_DOCUMENTS, *chunk) == len(wanted):
                continue
            found = {row["id"] for row in await self._db.fetch(_DOCUMENTS, *chunk)}
            deleted |= wanted - found
        return deleted

    async def _roles(self, project_ids: set[str]) -> dict[str, dict[str, Role]]:
        """Each project's members and their roles."""
        roles: dict[str, dict[str, Role]] = defaultdict(dict)
        for chunk in padded_chunks(sorted(project_ids)):
            for row in await self._db.fetch(_MEMBERS, *chunk):
                roles[row["project_id"]][row["user_id"]] = Role.parse(row["role"])
        return roles

    async def recheck_forever(self, interval: float) -> None:
        """Every ``interval`` seconds, :meth:`recheck_all` (whatever one round hits)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recheck_all()
            except Exception as exc:  # a database hiccup must not end the loop
                logger.warning("periodic access re-check failed: %s", exc)

    def close_deleted(self, doc_ids: list[str]) -> None:
        """Close every connection to the given documents and drop their rooms."""
        for doc_id in doc_ids:
            room = self._rooms.get(doc_id)
            if room is not None:
                room.close_peers(close_codes.NOT_FOUND, "document deleted")
                self._rooms.forget(room)
