"""The write path's own check that a writing peer is still a member.

Revocations reach open connections through :class:`AccessChanges`, on this
node directly and on the others over the relay. The relay may lose that
message (pub/sub is at most once, and Redis may be away), so the room does
not rely on it alone: before applying a peer's update it re-reads that
peer's role from the database if the role it holds is older than
``interval``. The cost is one indexed query per writing connection per
interval, never one per update; the bound it gives is that a removed member's
updates stop being accepted at most ``interval`` after the removal commits,
whatever happened to the relay. Viewers' updates are dropped anyway, and a
peer that does not write costs nothing here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from auth.access import Role
from collab.realtime.peer import Peer
from eventstore.errors import EventStoreError

logger = logging.getLogger(__name__)

ROLE_RECHECK_SECONDS = 1.0
RoleReader = Callable[[str, str], Awaitable[Role | None]]


class AccessRevokedError(Exception):
    """The peer is no longer a member of the document's project."""


class WriteGuard:
    """Keeps writing peers' roles at most ``interval`` seconds old."""

    def __init__(self, read_role: RoleReader, *, interval: float = ROLE_RECHECK_SECONDS) -> None:
        self._read_role = read_role
        self._interval = interval

    async def refresh(self, peer: Peer, project_id: str) -> None:
        """Re-read ``peer``'s role if it is stale.

        When the database cannot answer, the role is kept: nothing commits
        without the database anyway, so no write gets through meanwhile.

        Raises:
            AccessRevokedError: the peer's user is no longer a member.
        """
        now = time.monotonic()
        if now - peer.role_checked_at < self._interval:
            return
        peer.role_checked_at = now
        try:
            role = await self._read_role(project_id, peer.user.id)
        except EventStoreError as exc:
            logger.warning("role re-check of %s failed: %s", peer.describe(), exc)
            return
        if role is None:
            raise AccessRevokedError(peer.user.id)
        peer.role = role
