"""Memory of a real node under abuse and under churn, read from /proc/<pid>/status.

Both tests run ``collab serve`` as a subprocess on its own SQLite file, so the
resident set measured is the server's alone. Figures are printed (run with
``-s`` to see them) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from auth.access import Role
from auth.tokens import TokenSigner
from collab.realtime.protocol import SyncType, sync_message
from eventstore import apply_migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log
from tests.conftest import TEST_SECRET
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, seed_database
from tests.support.nodes import RunningNode, running_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIB = 1024 * 1024
BIG_DOC_BYTES = 2 * MIB
STEP1_FRAMES = 300
SOAK_SECONDS = 60.0
SOAK_MAX_ROUNDS = 200
# A round starts at most this often: hundreds of connections a minute, the same
# load on a fast machine as on a slow one.
SOAK_ROUND_SECONDS = 1.0
SOAK_DOCUMENTS = 8
SOAK_USERS = 10
SOAK_CONCURRENT = 40
_DOCUMENT = (
    "INSERT INTO documents (id, project_id, name, language, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'python', $4, $4)"
)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def settled_rss(pid: int, *, seconds: float = 1.0) -> int:
    """The RSS once it has stopped falling for ``seconds`` (bounded to 15 s)."""
    best = rss_bytes(pid)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            while True:
                await asyncio.sleep(seconds)
                now = rss_bytes(pid)
                if now >= best:
                    return best
                best = now
    return best


@dataclass
class World:
    node: RunningNode
    seeded: Seeded
    doc_ids: list[str]

    def ws(self, doc_id: str, who: str) -> str:
        return f"{self.node.ws_url}/{doc_id}?token={self.seeded.tokens[who]}"


async def _seed(
    url: str, roles: dict[str, Role | None], documents: int, big: bool
) -> tuple[Seeded, list[str]]:
    async with open_database(url) as db:
        await apply_migrations(db)
        signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
        seeded = await seed_database(db, signer, roles)
        doc_ids = [seeded.doc_id]
        for index in range(1, documents):
            doc_id = f"{seeded.doc_id[:24]}{index:08d}"
            async with db.transaction() as conn:
                await conn.execute(
                    _DOCUMENT, doc_id, seeded.project_id, f"d{index}.py", time.time()
                )
                await create_log(conn, doc_id)
            doc_ids.append(doc_id)
        if big:
            doc: Doc[Any] = Doc(client_id=7)
            doc.get("content", type=Text).insert(0, "x = 1  # padding\n" * (BIG_DOC_BYTES // 17))
            owner = seeded.users["owner"].id
            await EventLog(db).append(
                seeded.doc_id, [NewEvent("update", doc.get_update(), owner, "seed")]
            )
    return seeded, doc_ids


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path, roles: dict[str, Role | None], *, documents: int = 1, big: bool = False
) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path}/soak.db"
    seeded, doc_ids = await _seed(url, roles, documents, big)
    env = {
        "COLLAB_DATABASE_URL": url,
        "COLLAB_JWT_SECRET": TEST_SECRET,
        "COLLAB_ROOM_GRACE_SECONDS": "1",
    }
    async with running_node(env, workdir=tmp_path / "node") as node:
        yield World(node, seeded, doc_ids)


async def test_non_reading_viewer_cannot_amplify_memory(tmp_path: Path) -> None:
    """300 step 1 frames on a ~2 MiB document from a socket that never reads."""
    roles: dict[str, Role | None] = {"owner": Role.OWNER, "viewer": Role.VIEWER}
    async with world(tmp_path, roles, big=True) as w, aiohttp.ClientSession() as http:
        pid = w.node.process.pid
        doc = w.doc_ids[0]
        async with connect(http, w.ws(doc, "owner"), client_id=1) as owner:
            assert len(str(owner.text)) > BIG_DOC_BYTES * 0.9
            baseline = await settled_rss(pid)
            attacker = await http.ws_connect(w.ws(doc, "viewer"), max_msg_size=0)
            step1 = sync_message(SyncType.STEP1, b"\x00")
            for _ in range(STEP1_FRAMES):
                await attacker.send_bytes(step1)
            await asyncio.sleep(3)
            peak = rss_bytes(pid)
            await attacker.close()
            after = await settled_rss(pid)
            owner.text += "still fine"
            await asyncio.sleep(0.2)
        print(
            f"\nnon-reading viewer: baseline {baseline / MIB:.0f} MiB,"
            f" under attack {peak / MIB:.0f} MiB, after close {after / MIB:.0f} MiB"
        )
        # Before coalescing and byte bounds: +578 MiB under attack, +643 MiB after.
        assert peak - baseline < 48 * MIB
        assert after - baseline < 24 * MIB


async def _one_session(http: aiohttp.ClientSession, url: str, client_id: int) -> None:
    async with connect(http, url, client_id=client_id) as client:
        for char in "edit;":
            client.text += char
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)


async def test_soak_memory_returns_to_baseline(tmp_path: Path) -> None:
    """Hundreds of connections open, edit and close across documents for about a minute."""
    users = [f"u{i}" for i in range(SOAK_USERS)]
    roles: dict[str, Role | None] = {"owner": Role.OWNER}
    roles.update({user: Role.EDITOR for user in users})
    async with (
        world(tmp_path, roles, documents=SOAK_DOCUMENTS) as w,
        aiohttp.ClientSession() as http,
    ):
        pid = w.node.process.pid
        ids = itertools.count(1000)
        urls = [w.ws(doc, user) for doc in w.doc_ids for user in users]

        async def round_of(count: int) -> None:
            await asyncio.gather(
                *(_one_session(http, urls[next(ids) % len(urls)], next(ids)) for _ in range(count))
            )

        for _ in range(3):  # warm up: imports, caches, pools, the allocator's arenas
            await round_of(SOAK_CONCURRENT)
        await asyncio.sleep(1.5)  # rooms unload after their 1 s grace
        baseline = await settled_rss(pid)
        started = time.monotonic()
        sessions = rounds = 0
        peak = baseline
        while time.monotonic() - started < SOAK_SECONDS and rounds < SOAK_MAX_ROUNDS:
            round_started = time.monotonic()
            await round_of(SOAK_CONCURRENT)
            await asyncio.sleep(max(0.0, SOAK_ROUND_SECONDS - (time.monotonic() - round_started)))
            sessions += SOAK_CONCURRENT
            rounds += 1
            peak = max(peak, rss_bytes(pid))
        await asyncio.sleep(1.5)
        after = await settled_rss(pid)
        print(
            f"\nsoak: {sessions} connections in {rounds} rounds over"
            f" {time.monotonic() - started:.0f}s; baseline {baseline / MIB:.0f} MiB,"
            f" peak {peak / MIB:.0f} MiB, after {after / MIB:.0f} MiB"
        )
        assert sessions >= 200
        assert after <= baseline * 1.2
