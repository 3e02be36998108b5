"""Committing a server-made change through a document's room, as its caller.

A change is made on a document rebuilt at some seq, taken as a Yjs update and
applied to the room's live document: the CRDT merges it with everything
committed since, and the room commits it before any client sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pycrdt import Doc

from auth.access import DocumentAccess
from collab.realtime.keys import ROOMS
from collab.realtime.room import ServerEdit
from eventstore.crdt import UpdateRejectedError, guarded
from webcore.errors import ValidationError


def update_from(doc: Doc[Any], change: Callable[[Doc[Any]], None]) -> bytes:
    """Run ``change`` on ``doc`` and return the Yjs update of what it did.

    Raises:
        UpdateRejectedError: yrs refused the change.
    """
    before = doc.get_state()
    guarded(lambda: change(doc))
    return guarded(lambda: doc.get_update(before))


async def commit_update(
    request: web.Request, access: DocumentAccess, edit: ServerEdit, update: bytes
) -> int | None:
    """Apply ``update`` to the document's room and commit it as one event.

    Returns:
        The event's seq; None when the update changed nothing and the edit is
        not ``always``.

    Raises:
        ValidationError: yrs could not integrate the update.
    """
    async with request.app[ROOMS].borrow(access.doc_id, access.project_id) as room:
        try:
            return await room.commit_edit(edit, lambda doc: doc.apply_update(update))
        except UpdateRejectedError:
            raise ValidationError(
                "the update was rejected", details={"update": ["does not apply"]}
            ) from None
