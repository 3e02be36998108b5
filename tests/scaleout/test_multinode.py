"""Several nodes on one document through Redis (real Postgres, Redis, processes).

The log is the truth and Redis a hint: whatever happens to the relay, every
client converges and the log holds every edit.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from auth.access import Role
from collab.realtime.protocol import Reader
from tests.scaleout.cluster import Cluster, cluster
from tests.support.tcpproxy import ProxyMode
from tests.support.yjs import YjsClients, node_available, replay_log_with_yjs

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(180),
]

ROLES = {name: Role.EDITOR for name in ("u0", "u1", "u2", "u3", "u4", "u5")} | {"owner": Role.OWNER}
CLIENTS = [f"u{i}" for i in range(6)]


@pytest.fixture
async def three_nodes(postgres_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(postgres_url, redis_url, tmp_path, size=3, roles=ROLES) as running:
        yield running


async def connect_spread(yjs: YjsClients, nodes: Cluster) -> None:
    """Two clients on each node."""
    for i, name in enumerate(CLIENTS):
        result = await yjs.connect(
            name, nodes.ws_url(i % 3), nodes.seeded.doc_id, nodes.token(name)
        )
        assert result.synced, result


def _clocks(state_vector: bytes) -> dict[int, int]:
    """A Yjs state vector: each client's next clock."""
    reader = Reader(state_vector)
    return {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}


async def assert_log_complete(nodes: Cluster, text: str) -> None:
    assert await nodes.logged_text() == text
    replayed = await replay_log_with_yjs(await nodes.logged_updates())
    assert replayed.text == text
    assert not replayed.pending


async def type_everywhere(yjs: YjsClients, count: int = 60, interval_ms: int = 10) -> None:
    await asyncio.gather(
        *(
            yjs.random_edits(name, count, seed=i, interval_ms=interval_ms)
            for i, name in enumerate(CLIENTS)
        )
    )


async def test_clients_on_three_nodes_converge(three_nodes: Cluster) -> None:
    async with YjsClients() as yjs:
        await connect_spread(yjs, three_nodes)
        await type_everywhere(yjs)
        text = await yjs.wait_converged(CLIENTS, within=30)
    await assert_log_complete(three_nodes, text)


async def test_gap_repair_after_relay_messages_are_dropped(
    three_nodes: Cluster, redis_url: str
) -> None:
    killer = aioredis.from_url(redis_url)
    async with YjsClients() as yjs:
        await connect_spread(yjs, three_nodes)
        typing = asyncio.create_task(type_everywhere(yjs, count=80))
        for _ in range(6):
            await asyncio.sleep(0.2)
            # Every subscriber connection drops and misses what is published meanwhile.
            await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]
        await typing
        text = await yjs.wait_converged(CLIENTS, within=30)
    await killer.aclose()
    await assert_log_complete(three_nodes, text)


async def test_redis_outage_then_recovery(three_nodes: Cluster) -> None:
    async with YjsClients() as yjs, aiohttp.ClientSession() as http:
        await connect_spread(yjs, three_nodes)
        typing = asyncio.create_task(type_everywhere(yjs, count=150, interval_ms=20))
        await asyncio.sleep(0.3)
        await three_nodes.redis_outage(ProxyMode.CLOSED)
        await asyncio.sleep(1.0)
        async with http.get(f"{three_nodes.http_url(0)}/readyz") as response:
            assert response.status == 503
            assert (await response.json())["checks"]["redis"] is False
        # Clients on one node still see each other while Redis is away (u0, u3: node 0).
        # Seen by clock, not by text: the others keep typing at random places,
        # inside the inserted text too, so a substring check could wait forever.
        await yjs.insert("u0", 0, "<during outage>")
        author = (await yjs.status("u0")).client_id
        written = _clocks(await yjs.state_vector("u0"))[author]
        async with asyncio.timeout(10):
            while _clocks(await yjs.state_vector("u3")).get(author, 0) < written:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)
        await three_nodes.redis_outage(ProxyMode.PASS)
        await typing
        text = await yjs.wait_converged(CLIENTS, within=30)
        async with http.get(f"{three_nodes.http_url(0)}/readyz") as response:
            assert response.status == 200
    await assert_log_complete(three_nodes, text)


async def test_node_killed_clients_fail_over_and_converge(three_nodes: Cluster) -> None:
    async with YjsClients() as yjs:
        await connect_spread(yjs, three_nodes)
        typing = asyncio.create_task(type_everywhere(yjs, count=100, interval_ms=10))
        await asyncio.sleep(0.4)
        three_nodes.nodes[0].process.send_signal(signal.SIGKILL)
        three_nodes.fail_over(dead=0, to=1)
        await typing
        text = await yjs.wait_converged(CLIENTS, within=40)
    await assert_log_complete(three_nodes, text)


async def test_presence_crosses_nodes_and_leaves_with_a_dead_node(three_nodes: Cluster) -> None:
    doc = three_nodes.seeded.doc_id
    async with YjsClients() as yjs:
        a = await yjs.connect("u0", three_nodes.ws_url(0), doc, three_nodes.token("u0"))
        await yjs.connect("u1", three_nodes.ws_url(1), doc, three_nodes.token("u1"))
        await yjs.awareness_set("u0", {"cursor": 7})
        await yjs.wait_awareness("u1", a.client_id, present=True, within=10)
        states = await yjs.awareness_states("u1")
        assert states[a.client_id]["cursor"] == 7
        assert states[a.client_id]["user"]["id"] == three_nodes.seeded.users["u0"].id
        three_nodes.nodes[0].process.send_signal(signal.SIGKILL)
        # Gone well before y-protocols' own 30 s timeout: three missed heartbeats.
        await yjs.wait_awareness("u1", a.client_id, present=False, within=15)


async def test_revocation_closes_connections_on_every_node(three_nodes: Cluster) -> None:
    doc = three_nodes.seeded.doc_id
    target = three_nodes.seeded.users["u1"].id
    async with YjsClients() as yjs, aiohttp.ClientSession() as http:
        for index in range(3):
            result = await yjs.connect(
                f"c{index}", three_nodes.ws_url(index), doc, three_nodes.token("u1")
            )
            assert result.synced
        started = asyncio.get_running_loop().time()
        project = three_nodes.seeded.project_id
        url = f"{three_nodes.http_url(0)}/api/projects/{project}/members/{target}"
        headers = {"Authorization": f"Bearer {three_nodes.token('owner')}"}
        async with http.delete(url, headers=headers) as response:
            assert response.status == 204
        for index in range(3):
            async with asyncio.timeout(1.0 - (asyncio.get_running_loop().time() - started)):
                while (await yjs.status(f"c{index}")).last_close_code != 4403:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
