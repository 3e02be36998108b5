"""The servers the suite compares: collab on SQLite and on Postgres, the stock server, Hocuspocus.

Each :func:`target` is a fresh server with a fresh document: a ``collab serve``
node on a new SQLite file or Postgres schema (rate limits raised so they never
interfere), the npm ``@y/websocket-server``, or ``@hocuspocus/server`` (both with
documents in memory, nothing saved). The clients connect to
:attr:`Target.writer` and :attr:`Target.reader`.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bench.common import (
    BenchSkipError,
    collab_nodes,
    fetch_metrics,
    postgres_database,
    require_redis,
    seed_document,
    sqlite_database,
)
from bench.hocuspocus import PROTOCOL as HOCUSPOCUS_PROTOCOL
from bench.hocuspocus import HocuspocusStartError, hocuspocus_server
from bench.stock import Endpoint
from tests.services import REDIS_URL
from tests.support.nodes import RunningNode
from tests.support.yjs import YjsHarnessError, reference_server

STOCK = "stock"
SQLITE = "collab SQLite"
POSTGRES = "collab Postgres"
HOCUSPOCUS = "Hocuspocus"
KINDS = (STOCK, HOCUSPOCUS, SQLITE, POSTGRES)
# The targets are ratios to the stock server; Hocuspocus is a second yardstick.
REFERENCES = (STOCK, HOCUSPOCUS)
# Rate limits and the per-user connection cap (20 per document by default; every
# reader of a fan-out is one user) are a policy, not a cost: raised so a benchmark
# measures the engine.
RAISED_LIMITS = {
    "COLLAB_UPDATES_PER_SECOND": "1000000",
    "COLLAB_UPDATE_BURST": "1000000",
    "COLLAB_MAX_CONNECTIONS_PER_USER_PER_DOCUMENT": "200",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One server with one document ready for a workload."""

    kind: str
    writer: Endpoint
    reader: Endpoint
    # collab only: the node's HTTP base URL and a token that may read the document.
    http_url: str | None = None
    doc_id: str = ""
    token: str = ""


@dataclass(frozen=True, slots=True)
class LogFigures:
    """What a collab node's log and metrics say after a run (nan/None for the other servers)."""

    head_seq: float = math.nan
    commits: float = math.nan
    commit_ms: float = math.nan
    text: str | None = None


@contextlib.asynccontextmanager
async def target(kind: str) -> AsyncIterator[Target]:
    """A fresh server of ``kind`` (one of :data:`KINDS`) for the block's duration.

    Raises:
        BenchSkipError: its database or Node.js is missing.
    """
    if kind == STOCK:
        try:
            async with reference_server() as server:
                room = f"bench-{uuid.uuid4().hex[:8]}"
                endpoint = Endpoint(server.ws_url, room)
                yield Target(kind, endpoint, endpoint)
        except YjsHarnessError as exc:
            raise BenchSkipError(f"stock server: {exc}") from None
        return
    if kind == HOCUSPOCUS:
        try:
            async with hocuspocus_server() as base:
                room = f"bench-{uuid.uuid4().hex[:8]}"
                endpoint = Endpoint(base, room, protocol=HOCUSPOCUS_PROTOCOL)
                yield Target(kind, endpoint, endpoint)
        except HocuspocusStartError as exc:
            raise BenchSkipError(str(exc)) from None
        return
    database = postgres_database() if kind == POSTGRES else sqlite_database()
    async with database as url:
        seeded = await seed_document(url)
        async with collab_nodes(url, 1, **RAISED_LIMITS) as [node]:
            yield _collab_target(kind, node, seeded.doc_id, seeded.tokens)


@contextlib.asynccontextmanager
async def cluster(size: int) -> AsyncIterator[list[Target]]:
    """``size`` collab nodes on one Postgres schema and Redis, all serving one document."""
    require_redis()
    async with postgres_database() as url:
        seeded = await seed_document(url)
        async with collab_nodes(url, size, redis_url=REDIS_URL, **RAISED_LIMITS) as nodes:
            yield [_collab_target(POSTGRES, n, seeded.doc_id, seeded.tokens) for n in nodes]


def _collab_target(kind: str, node: RunningNode, doc_id: str, tokens: dict[str, str]) -> Target:
    return Target(
        kind,
        Endpoint(node.ws_url, doc_id, tokens["writer"]),
        Endpoint(node.ws_url, doc_id, tokens["watcher"]),
        http_url=node.url,
        doc_id=doc_id,
        token=tokens["writer"],
    )


async def log_figures(target: Target) -> LogFigures:
    """The node's head seq, commits and mean commit time, and the text its log rebuilds."""
    if target.http_url is None:
        return LogFigures()
    headers = {"Authorization": f"Bearer {target.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        metrics = await fetch_metrics(http, target.http_url)
        document = f"{target.http_url}/api/documents/{target.doc_id}"
        async with http.get(document) as response:
            response.raise_for_status()
            head = float((await response.json())["head_seq"])
        async with http.get(f"{document}/content") as response:
            response.raise_for_status()
            text = str((await response.json())["text"])
    commits = metrics.get("collab_commit_seconds_count", 0.0)
    seconds = metrics.get("collab_commit_seconds_sum", 0.0)
    mean = seconds / commits * 1000 if commits else math.nan
    return LogFigures(head, commits, mean, text)
