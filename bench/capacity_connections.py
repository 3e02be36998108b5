"""Capacity of one node in connections: memory per idle connection, reconnect storm.

Usage (from the repository root; needs Postgres and node)::

    .venv/bin/python -m bench.capacity_connections [--clients 10000] [--storm 5000] [--quick]

Runs one ``collab serve`` node on Postgres and, in the same run, the stock
``@y/websocket-server``. Against each it connects ``--clients`` stock
y-websocket clients (the npm ``y-websocket`` provider over ``ws``, which offers
permessage-deflate as browsers do), spread over documents of 150 clients each,
from four client processes. It prints JSON lines:

* ``idle_memory``: the server's resident memory growth per connected client
  (KiB), measured after one warm-up client per document has loaded the rooms;
* ``reconnect_storm``: ``--storm`` clients dropped and reconnected at once
  (the median of three storms, or fewer when one leaves clients out),
  each retrying as the stock provider does after a close that is not final:
  seconds until all are synced again, the retries, and server CPU seconds
  (user + system) per reconnect. Every client's awareness state is set to
  null first, so none sends any. Then the storm runs twice: first
  (``presence: off``) as it is, so no server has any presence to relay;
  then (``presence: cursor``) after each of the storm's clients has set a
  cursor, so that every drop is a removal sent to the others of its
  document, every copy they send back is read, and each of those clients
  renews its cursor every 15 s.
  (Left at its default, a stock client's state is ``{}`` at clock 0, which
  y-protocols applies nowhere, until its first renewal 15 s after it
  started: whether a server had any presence to relay would depend on how
  long the clients had been connected.)

``--quick`` uses 600 clients and a storm of 300.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from auth.access import Role
from auth.tokens import TokenSigner
from bench.common import (
    collab_nodes,
    memory_of,
    pid_listening_on,
    postgres_database,
)
from eventstore import apply_migrations, open_database
from tests.conftest import TEST_SECRET
from tests.realtime.seed import seed_database
from tests.support.yjs import ConnectResult, YjsClients, YjsTimeoutError, reference_server

CLIENTS_PER_DOCUMENT = 150
HARNESSES = 4
CONNECT_CHUNK = 200
# Seconds a storm may take before the clients not yet synced count as failed.
STORM_LIMIT = 120
# Seconds to wait at most for a server to go quiet after the cursors are set.
SETTLE_LIMIT = 60
# Storms per presence setting and server; the median is reported (the clients'
# processes share the machine's cores with the server, so one storm is noisy).
STORM_REPEATS = 3


def emit(figure: str, **values: Any) -> None:
    """One JSON line of figures."""
    print(json.dumps({"bench": "capacity_connections", "figure": figure, **values}), flush=True)


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: its name, pid, WebSocket base URL and documents."""

    name: str
    pid: int
    ws_url: str
    docs: Sequence[tuple[str, Sequence[str]]]  # (doc id, a token per client of it)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def harnesses() -> AsyncIterator[list[YjsClients]]:
    """A few client processes, so one Node event loop is not the bottleneck."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(YjsClients(command_timeout=120))
            for _ in range(HARNESSES)
        ]


async def connect_all(
    clients: list[YjsClients], target: Target, names: Sequence[str], offset: int
) -> int:
    """Connect every named client (round-robin over documents); return how many synced."""
    synced = 0
    for chunk in _chunks(names):
        results = await asyncio.gather(
            *(
                clients[i % HARNESSES].connect(
                    name, target.ws_url, *_doc_and_token(target, offset + i), within=60
                )
                for i, name in chunk
            )
        )
        synced += sum(result.synced for result in results)
    return synced


def _chunks(names: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
    """``(index, name)`` pairs, CONNECT_CHUNK at a time (so many requests in flight at once)."""
    indexed = list(enumerate(names))
    for start in range(0, len(indexed), CONNECT_CHUNK):
        yield indexed[start : start + CONNECT_CHUNK]


def _doc_and_token(target: Target, index: int) -> tuple[str, str]:
    """Clients go round-robin over the documents, each with its own user."""
    doc_id, tokens = target.docs[index % len(target.docs)]
    return doc_id, tokens[(index // len(target.docs)) % len(tokens)]


async def set_presence(
    clients: list[YjsClients], names: Sequence[str], pid: int, *, cursors: bool
) -> None:
    """Give each named client a cursor, or no awareness state; wait until the server is quiet."""
    for chunk in _chunks(names):
        await asyncio.gather(
            *(
                clients[i % HARNESSES].awareness_set(n, {"cursor": i} if cursors else None)
                for i, n in chunk
            )
        )
    await quiet(pid)


async def quiet(pid: int) -> None:
    """Wait until ``pid`` uses under 5 % of a core over a second (at most SETTLE_LIMIT s)."""
    deadline = time.perf_counter() + SETTLE_LIMIT
    while time.perf_counter() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(1)
        if cpu_seconds(pid) - before < 0.05:
            return


async def storm(clients: list[YjsClients], names: Sequence[str], pid: int) -> dict[str, Any]:
    """Drop ``names`` and reconnect them all at once.

    Each client then behaves as the stock provider does: after a close that
    is not final (1013 "try again later", a dropped socket) it retries with
    its own backoff, so the storm is over when every client is synced again,
    retries included, or at the limit. ``retries`` counts those extra
    connections.
    """
    harness = {name: clients[i % HARNESSES] for i, name in enumerate(names)}
    opened = await asyncio.gather(*(harness[n].status(n) for n in names))
    opened_before = {n: status.attempts for n, status in zip(names, opened, strict=True)}
    await asyncio.gather(*(harness[n].disconnect(n) for n in names))
    cpu, started = cpu_seconds(pid), time.perf_counter()
    outcomes = await asyncio.gather(
        *(harness[n].reconnect(n, keep_trying=True, within=STORM_LIMIT) for n in names),
        return_exceptions=True,
    )
    elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    results = {n: r for n, r in zip(names, outcomes, strict=True) if isinstance(r, ConnectResult)}
    # A client process too busy to answer in time: those clients did not come back.
    unanswered = [r for r in outcomes if isinstance(r, YjsTimeoutError)]
    if len(results) + len(unanswered) < len(outcomes):
        raise next(r for r in outcomes if isinstance(r, BaseException))
    failures = Counter(f"{r.close_code} {r.error}" for r in results.values() if not r.synced)
    if unanswered:
        failures["no reply from the client process"] = len(unanswered)
    return {
        "clients": len(names),
        "synced": sum(r.synced for r in results.values()),
        # Each client opens one connection to come back; any more are retries.
        "retries": sum(max(0, r.attempts - opened_before[n] - 1) for n, r in results.items()),
        "failures": dict(failures),
        "seconds": round(elapsed, 2),
        "cpu_ms_per_connection": round(used * 1000 / len(names), 3),
    }


async def measure(target: Target, count: int, storm_size: int) -> None:
    """Idle memory per connection and the reconnect storm against one server."""
    async with harnesses() as clients:
        warm = [f"warm{i}" for i in range(len(target.docs))]
        await connect_all(clients, target, warm, 0)
        await asyncio.sleep(2)
        before = memory_of(target.pid).rss
        names = [f"c{i}" for i in range(count)]
        synced = await connect_all(clients, target, names, 0)
        await asyncio.sleep(5)  # let allocations settle
        after = memory_of(target.pid).rss
        emit(
            "idle_memory",
            server=target.name,
            clients=count,
            synced=synced,
            rss_mib=round(after, 1),
            kib_per_connection=round((after - before) * 1024 / count, 1),
        )
        # Every client's presence off first: left on, each renews it every 15 s,
        # a message to the 149 others of its document and 149 copies back.
        await set_presence(clients, names, target.pid, cursors=False)
        stormers = names[:storm_size]
        for presence in ("off", "cursor"):
            emit(
                "reconnect_storm",
                server=target.name,
                presence=presence,
                **await storms(clients, stormers, target.pid, cursors=presence == "cursor"),
            )


async def storms(
    clients: list[YjsClients], names: Sequence[str], pid: int, *, cursors: bool
) -> dict[str, Any]:
    """The median of STORM_REPEATS storms (by seconds), each after setting the presence anew.

    A storm that leaves clients out ends the series: its time is the limit,
    not the server's, and the next would start from clients still retrying.
    """
    runs = []
    for _ in range(STORM_REPEATS):
        await set_presence(clients, names, pid, cursors=cursors)
        runs.append(await storm(clients, names, pid))
        if runs[-1]["synced"] < len(names):
            break
    runs.sort(key=lambda run: float(run["seconds"]))
    return {
        **runs[len(runs) // 2],
        "runs": len(runs),
        "seconds_of_each": [run["seconds"] for run in runs],
    }


@contextlib.asynccontextmanager
async def collab_target(count: int) -> AsyncIterator[Target]:
    """A collab node on a fresh Postgres schema with enough documents."""
    async with postgres_database() as url:
        docs: list[tuple[str, Sequence[str]]] = []
        async with open_database(url) as db:
            await apply_migrations(db)
            signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
            # One user per client: per-user rate limits are then those of a real crowd.
            roles: dict[str, Role | None] = {
                f"user{i}": Role.EDITOR for i in range(CLIENTS_PER_DOCUMENT + 1)
            }
            for _ in range(math.ceil(count / CLIENTS_PER_DOCUMENT)):
                seeded = await seed_database(db, signer, roles)
                docs.append((seeded.doc_id, list(seeded.tokens.values())))
        async with collab_nodes(url, 1) as nodes:
            node = nodes[0]
            yield Target("collab", node.process.pid, node.ws_url, docs)


async def main(count: int, storm_size: int) -> None:
    """Both servers, one after the other, in the same run."""
    async with collab_target(count) as target:
        await measure(target, count, storm_size)
    async with reference_server() as server:
        pid = pid_listening_on(server.port)
        if pid is None:
            raise RuntimeError("cannot find the stock server's process")
        docs = [(f"doc{i}", [""]) for i in range(math.ceil(count / CLIENTS_PER_DOCUMENT))]
        await measure(Target("y-websocket-server", pid, server.ws_url, docs), count, storm_size)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--storm", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="600 clients, a storm of 300")
    args = parser.parse_args()
    quick = args.quick
    asyncio.run(main(600 if quick else args.clients, 300 if quick else args.storm))
