"""Access changes applied to open connections, on this node and on the others.

Routes that remove or demote a member, or delete documents, call
:class:`AccessChanges` after their transaction commits. A removed member's
connections close with 4403; a demoted one's become read-only at once (their
updates are dropped from then on); connections to a deleted document close
with 4404. Other nodes hear of it through the relay, and because the relay
may lose messages, :meth:`AccessChanges.recheck_all` re-reads every open
connection's role from the database after the relay reconnects.
"""

from __future__ import annotations

from auth.access import document_access, project_role
from collab.realtime import close_codes
from collab.realtime.relay import AccessChanged, Relay
from collab.realtime.rooms import RoomManager
from eventstore import Connection


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
                peer.close_soon(close_codes.FORBIDDEN, "access revoked")
            else:
                peer.role = role

    async def recheck_all(self) -> None:
        """Re-read the role of every open connection (after a relay outage)."""
        for room in self._rooms.rooms():
            for peer in list(room.peers.values()):
                access = await document_access(self._db, room.doc_id, peer.user.id)
                if access is None:
                    peer.close_soon(close_codes.FORBIDDEN, "access revoked")
                else:
                    peer.role = access.role

    def close_deleted(self, doc_ids: list[str]) -> None:
        """Close every connection to the given documents and drop their rooms."""
        for doc_id in doc_ids:
            room = self._rooms.get(doc_id)
            if room is not None:
                room.close_peers(close_codes.NOT_FOUND, "document deleted")
                self._rooms.forget(room)
