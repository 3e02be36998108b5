"""Several real ``collab serve`` nodes on one Postgres schema and one Redis.

Each node reaches Redis through its own :class:`TcpProxy` (so a test can take
Redis away from the nodes without touching the shared server), and clients
reach each node through a front proxy that can be re-pointed at another node,
as a load balancer would after a node dies.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from auth.access import Role
from auth.tokens import TokenSigner
from eventstore import apply_migrations, open_database
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.replay import rebuild
from tests.conftest import TEST_SECRET
from tests.realtime.seed import Seeded, seed_database
from tests.support.nodes import RunningNode, running_node
from tests.support.tcpproxy import ProxyMode, TcpProxy


@dataclass
class Cluster:
    """The nodes, their proxies, the database URL and a seeded document."""

    database_url: str
    seeded: Seeded
    nodes: list[RunningNode] = field(default_factory=list)
    redis_proxies: list[TcpProxy] = field(default_factory=list)
    fronts: list[TcpProxy] = field(default_factory=list)

    def ws_url(self, index: int) -> str:
        """The y-websocket base URL of node ``index`` (through its front proxy)."""
        return f"ws://127.0.0.1:{self.fronts[index].port}/ws"

    def http_url(self, index: int) -> str:
        """The HTTP base URL of node ``index`` (direct)."""
        return self.nodes[index].url

    def token(self, name: str) -> str:
        """An access token of a seeded user."""
        return self.seeded.tokens[name]

    async def redis_outage(self, mode: ProxyMode) -> None:
        """Cut (or restore, with PASS) every node's connection to Redis."""
        for proxy in self.redis_proxies:
            await proxy.set_mode(mode)

    def fail_over(self, dead: int, to: int) -> None:
        """Send new connections for node ``dead`` to node ``to``."""
        self.fronts[dead].upstream_port = self.nodes[to].port

    async def logged_text(self) -> str:
        """The document's text rebuilt from the log."""
        async with open_database(self.database_url) as db:
            rebuilt = await rebuild(EventLog(db), self.seeded.doc_id)
        return text_of(rebuilt.doc)

    async def logged_updates(self) -> list[bytes]:
        """Every update of the log, in seq order."""
        async with open_database(self.database_url) as db:
            return [e.update for e in await EventLog(db).read(self.seeded.doc_id)]


@contextlib.asynccontextmanager
async def cluster(
    database_url: str, redis_url: str, workdir: Path, *, size: int, roles: dict[str, Role]
) -> AsyncIterator[Cluster]:
    """Seed a document and run ``size`` nodes against it."""
    async with open_database(database_url) as db:
        await apply_migrations(db)
        signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
        seeded = await seed_database(db, signer, dict(roles))
    result = Cluster(database_url, seeded)
    prefix = f"collab-test-{uuid.uuid4().hex[:8]}"
    redis = urlsplit(redis_url)
    async with contextlib.AsyncExitStack() as stack:
        for index in range(size):
            proxy = await stack.enter_async_context(
                TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
            )
            proxied = redis_url.replace(f":{redis.port or 6379}", f":{proxy.port}", 1)
            env = {
                "COLLAB_DATABASE_URL": database_url,
                "COLLAB_REDIS_URL": proxied,
                "COLLAB_JWT_SECRET": TEST_SECRET,
                # Other clusters may share this Redis: keep their channels apart.
                "COLLAB_REDIS_PREFIX": prefix,
            }
            node = await stack.enter_async_context(
                running_node(env, node_id=f"node{index}", workdir=workdir / f"node{index}")
            )
            front = await stack.enter_async_context(TcpProxy("127.0.0.1", node.port))
            result.redis_proxies.append(proxy)
            result.nodes.append(node)
            result.fronts.append(front)
        yield result
