"""Apply access changes to open connections, on this node and (via the relay) on others.

Routes that remove or demote a member, or delete documents, call these after
their transaction commits. A removed member's connections close with 4403; a
demoted one's become read-only at once (their updates are dropped from then on).
"""

from __future__ import annotations

from aiohttp import web

from auth.access import project_role
from collab import close_codes
from collab.keys import ROOMS, SETTINGS
from collab.relay import AccessChanged
from collab.room_registry import RoomManager
from eventstore import Connection
from eventstore.keys import DATABASE


async def access_changed(app: web.Application, project_id: str, user_id: str) -> None:
    """A member of ``project_id`` was removed or had their role changed."""
    await apply_access_change(app[ROOMS], app[DATABASE], project_id, user_id)
    await app[ROOMS].relay.publish(AccessChanged(app[SETTINGS].node_id, project_id, user_id))


async def documents_deleted(app: web.Application, doc_ids: list[str]) -> None:
    """These documents no longer exist: close their connections with 4404."""
    close_deleted(app[ROOMS], doc_ids)
    if doc_ids:
        await app[ROOMS].relay.publish(
            AccessChanged(app[SETTINGS].node_id, "", None, tuple(doc_ids))
        )


async def apply_access_change(
    rooms: RoomManager, db: Connection, project_id: str, user_id: str
) -> None:
    """Re-read the member's role and apply it to their open connections here."""
    affected = [
        peer
        for room in rooms.rooms()
        if room.project_id == project_id
        for peer in room.peers.values()
        if peer.user.id == user_id
    ]
    if not affected:
        return
    role = await project_role(db, project_id, user_id)
    for peer in affected:
        if role is None:
            peer.close_soon(close_codes.FORBIDDEN, "access revoked")
        else:
            peer.role = role


def close_deleted(rooms: RoomManager, doc_ids: list[str]) -> None:
    """Close every connection to the given documents and drop their rooms."""
    for doc_id in doc_ids:
        room = rooms.get(doc_id)
        if room is not None:
            room.close_peers(close_codes.NOT_FOUND, "document deleted")
            rooms.forget(room)
