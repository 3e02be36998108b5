"""SIGKILL a serving node while real Yjs clients type, then restart it.

Two promises are checked: everything a client had received from the server
before the kill is in the log (commit before broadcast), and once the node is
back and the clients have reconnected, the log's text equals theirs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from auth.access import Role
from auth.tokens import TokenSigner
from collab.realtime.protocol import Reader
from eventstore import apply_migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.replay import document_text, rebuild
from tests.conftest import TEST_SECRET
from tests.realtime.seed import Seeded, seed_database
from tests.support.nodes import running_node
from tests.support.yjs import YjsClients, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(120),
]


def decode_state_vector(data: bytes) -> dict[int, int]:
    reader = Reader(data)
    return {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}


async def seed_for_node(url: str) -> Seeded:
    async with open_database(url) as db:
        await apply_migrations(db)
        signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
        return await seed_database(
            db, signer, {"a": Role.OWNER, "b": Role.EDITOR, "c": Role.EDITOR}
        )


async def test_sigkill_loses_nothing_that_was_shared(database_url: str, tmp_path: Path) -> None:
    seeded = await seed_for_node(database_url)
    env = {"COLLAB_DATABASE_URL": database_url, "COLLAB_JWT_SECRET": TEST_SECRET}
    names = ["a", "b", "c"]
    async with running_node(env, workdir=tmp_path / "node") as node, YjsClients() as yjs:
        client_ids = {}
        for name in names:
            result = await yjs.connect(name, node.ws_url, seeded.doc_id, seeded.tokens[name])
            assert result.synced
            client_ids[name] = result.client_id
        typing = [
            asyncio.create_task(yjs.random_edits(name, 150, seed=i, interval_ms=8))
            for i, name in enumerate(names)
        ]
        await asyncio.sleep(0.6)
        node.kill()
        seen = {name: decode_state_vector(await yjs.state_vector(name)) for name in names}
        committed = await _log_state_vector(database_url, seeded.doc_id)
        for viewer in names:
            for author in names:
                if author != viewer:
                    known = seen[viewer].get(client_ids[author], 0)
                    assert known <= committed.get(client_ids[author], 0), (viewer, author)
        await asyncio.gather(*typing)
        await node.start()
        # Converged means every edit went through the server, so it is committed.
        text = await yjs.wait_converged(names, within=30)
    async with open_database(database_url) as db:
        _, logged = await document_text(db, seeded.doc_id)
    assert logged == text


async def _log_state_vector(url: str, doc_id: str) -> dict[int, int]:
    async with open_database(url) as db:
        rebuilt = await rebuild(EventLog(db), doc_id)
    return decode_state_vector(rebuilt.doc.get_state())
