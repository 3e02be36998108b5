"""The periodic access re-check: every open connection in two queries, whatever the projects.

Changes are made straight in the database, as if their relay message had been
lost, so only the re-check can find them.
"""

from __future__ import annotations

from auth.access import Role
from collab.realtime.access import AccessChanges
from collab.realtime.keys import ROOMS
from collab.realtime.relay import LocalRelay
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, seed, ws_path
from tests.realtime.test_idle_rooms import CountingDatabase

_ROLES: dict[str, Role | None] = {"owner": Role.OWNER, "editor": Role.EDITOR, "viewer": Role.VIEWER}


async def _projects(client: Client, count: int) -> list[Seeded]:
    return [await seed(client.app, _ROLES) for _ in range(count)]


async def test_recheck_applies_lost_changes_in_two_queries(client: Client) -> None:
    removed, promoted, deleted = await _projects(client, 3)
    db = client.app[DATABASE]
    counting = CountingDatabase(db)
    access = AccessChanges(client.app[ROOMS], counting, LocalRelay(), "test-node")
    async with (
        connect(client, ws_path(removed, "editor"), client_id=1) as gone,
        connect(client, ws_path(removed, "owner"), client_id=2) as stays,
        connect(client, ws_path(promoted, "viewer"), client_id=3),
        connect(client, ws_path(deleted, "editor"), client_id=4) as orphan,
    ):
        await db.execute(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
            removed.project_id,
            removed.users["editor"].id,
        )
        await db.execute(
            "UPDATE project_members SET role = 'editor' WHERE project_id = $1 AND user_id = $2",
            promoted.project_id,
            promoted.users["viewer"].id,
        )
        await db.execute("DELETE FROM documents WHERE id = $1", deleted.doc_id)

        await access.recheck_all()

        # Documents counted, then (one is missing) read; every project's members.
        assert counting.queries == 3
        assert await gone.wait_closed(within=2.0) == 4403
        assert await orphan.wait_closed(within=2.0) == 4404
        room = client.app[ROOMS].get(promoted.doc_id)
        assert room is not None
        assert [peer.role for peer in room.peers.values()] == [Role.EDITOR]
        assert not stays.ws.closed

        counting.queries = 0
        await access.recheck_all()
        assert counting.queries == 2  # nothing deleted: a count, and the members
        assert not stays.ws.closed


async def test_recheck_of_no_rooms_queries_nothing(client: Client) -> None:
    counting = CountingDatabase(client.app[DATABASE])
    access = AccessChanges(client.app[ROOMS], counting, LocalRelay(), "test-node")
    await access.recheck_all()
    assert counting.queries == 0
