"""Delivery latency at a steady edit rate: same node, across nodes, and the reference.

Usage (from the repository root, with Postgres and Redis running)::

    .venv/bin/python -m bench.relay_latency [--rate 50] [--seconds 10] [--nodes 3]

``--nodes`` ``collab serve`` processes share a fresh Postgres schema and Redis
(a private channel prefix per run). A writer on node 0 appends a marker ``<i>``
at a steady rate; one reader per node notes when each marker arrives, so node 0's
reader gives the same-node figure and the others the cross-node one (commit on
node 0, Redis pub/sub, apply and send on the other node). The same workload then
runs against the npm y-websocket reference server (one process, in memory, no
log): the peer figure. Every client is a pycrdt y-websocket client in this
process, so send and arrival times come from one clock (``time.perf_counter``).
The first ``--warmup`` edits are typed at the same rate but not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pycrdt import TextEvent

from bench.common import (
    BenchSkipError,
    banner,
    collab_nodes,
    doc_url,
    fetch_metrics,
    fmt,
    postgres_database,
    quiet_resets,
    require_redis,
    run_part,
    seed_document,
    summarize,
    table,
)
from tests.realtime.pyclient import PyClient, connect
from tests.services import REDIS_URL
from tests.support.yjs import YjsHarnessError, reference_server

_MARKER = re.compile(r"<(\d+)>")
# Let every node finish subscribing to the document's Redis channel.
_SETTLE_SECONDS = 0.5
_HEADERS = ("path", "delivered", "lost", "p50 ms", "p95 ms", "p99 ms", "max ms")


@dataclass(frozen=True, slots=True)
class Workload:
    """What the writer types: ``warmup`` + ``rate * seconds`` markers, evenly spaced."""

    rate: float
    seconds: float
    warmup: int
    drain: float

    @property
    def edits(self) -> int:
        """Markers typed in all, warm-up included."""
        return self.warmup + round(self.rate * self.seconds)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Send times by marker, and each reader's arrival times by marker."""

    sent: list[float]
    arrivals: list[dict[int, float]]
    typing_seconds: float


class Arrivals:
    """Notes when each marker first shows up in one reader's document."""

    def __init__(self, client: PyClient, expected: int) -> None:
        self.times: dict[int, float] = {}
        self.complete = asyncio.Event()
        self._expected = expected
        self._subscription = client.text.observe(self._on_change)

    def _on_change(self, event: TextEvent) -> None:
        now = time.perf_counter()
        # pycrdt declares ``delta`` in __slots__ only, so mypy cannot see it.
        delta: list[dict[str, Any]] = event.delta  # type: ignore[attr-defined]
        for op in delta:
            inserted = op.get("insert")
            if isinstance(inserted, str):
                for match in _MARKER.finditer(inserted):
                    self.times.setdefault(int(match[1]), now)
        if len(self.times) >= self._expected:
            self.complete.set()


async def _type_steadily(writer: PyClient, workload: Workload) -> list[float]:
    sent: list[float] = []
    start = time.perf_counter()
    for index in range(workload.edits):
        # Sleeping to a schedule (not a fixed pause) keeps the rate from drifting.
        await asyncio.sleep(max(0.0, start + index / workload.rate - time.perf_counter()))
        sent.append(time.perf_counter())
        writer.text += f"<{index}>"
    return sent


async def _drain(readers: Sequence[Arrivals], within: float) -> None:
    # A reader still short of markers after ``within`` counts them as lost.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await asyncio.gather(*(r.complete.wait() for r in readers))


async def _run_workload(writer_url: str, reader_urls: Sequence[str], workload: Workload) -> Outcome:
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        readers = []
        for index, url in enumerate(reader_urls):
            client = await stack.enter_async_context(connect(http, url, client_id=1000 + index))
            readers.append(Arrivals(client, workload.edits))
        writer = await stack.enter_async_context(connect(http, writer_url, client_id=1))
        await asyncio.sleep(_SETTLE_SECONDS)
        started = time.perf_counter()
        sent = await _type_steadily(writer, workload)
        typing = time.perf_counter() - started
        await _drain(readers, workload.drain)
        return Outcome(sent, [r.times for r in readers], typing)


def _row(label: str, outcome: Outcome, readers: Sequence[int], warmup: int) -> list[str]:
    samples: list[float] = []
    lost = 0
    for reader in readers:
        times = outcome.arrivals[reader]
        for index in range(warmup, len(outcome.sent)):
            if index in times:
                samples.append((times[index] - outcome.sent[index]) * 1000)
            else:
                lost += 1
    s = summarize(samples)
    return [label, str(s.count), str(lost), *(fmt(v, 2) for v in (s.p50, s.p95, s.p99, s.max))]


async def _collab(workload: Workload, size: int, rows: list[list[str]], notes: list[str]) -> None:
    require_redis()
    async with postgres_database() as url:
        seeded = await seed_document(url)
        async with collab_nodes(url, size, redis_url=REDIS_URL) as nodes:
            writer = doc_url(nodes[0].ws_url, seeded.doc_id, seeded.tokens["writer"])
            readers = [doc_url(n.ws_url, seeded.doc_id, seeded.tokens["watcher"]) for n in nodes]
            outcome = await _run_workload(writer, readers, workload)
            async with aiohttp.ClientSession() as http:
                metrics = await fetch_metrics(http, nodes[0].url)
    rows.append(_row("collab same node (0 -> 0)", outcome, [0], workload.warmup))
    for index in range(1, size):
        rows.append(_row(f"collab cross node (0 -> {index})", outcome, [index], workload.warmup))
    everyone_else = list(range(1, size))
    rows.append(_row("collab cross node (all)", outcome, everyone_else, workload.warmup))
    notes.append(_commit_note(metrics, outcome))


def _commit_note(metrics: dict[str, float], outcome: Outcome) -> str:
    commits = metrics.get("collab_commit_seconds_count", 0.0)
    events = metrics.get("collab_events_appended_total", 0.0)
    mean_ms = metrics.get("collab_commit_seconds_sum", 0.0) / commits * 1000 if commits else 0.0
    rate = len(outcome.sent) / outcome.typing_seconds
    return (
        f"collab: typed {len(outcome.sent)} edits at {rate:.1f}/s; node 0 committed"
        f" {events:.0f} events in {commits:.0f} commits, mean commit {mean_ms:.2f} ms"
    )


async def _reference(workload: Workload, readers: int, rows: list[list[str]]) -> None:
    try:
        async with reference_server() as server:
            url = doc_url(server.ws_url, "bench-latency", "unused")
            outcome = await _run_workload(url, [url] * readers, workload)
    except YjsHarnessError as exc:
        raise BenchSkipError(f"y-websocket reference server: {exc}") from None
    label = "y-websocket reference (same process)"
    rows.append(_row(label, outcome, list(range(readers)), workload.warmup))


async def _main(args: argparse.Namespace) -> None:
    asyncio.get_running_loop().set_exception_handler(quiet_resets)
    workload = Workload(args.rate, args.seconds, args.warmup, args.drain)
    banner(
        "relay latency: writer on node 0, one reader per node; pycrdt clients, one clock",
        [
            f"{workload.edits} edits at {workload.rate:g}/s"
            f" (first {workload.warmup} are warm-up, not counted); {args.nodes} nodes,"
            " Postgres + Redis; reference: @y/websocket-server, one process, in memory",
        ],
    )
    rows: list[list[str]] = []
    notes: list[str] = []
    await run_part("collab", lambda: _collab(workload, args.nodes, rows, notes))
    if not args.skip_reference:
        await run_part("reference", lambda: _reference(workload, args.nodes, rows))
    if rows:
        print(table(_HEADERS, rows))
    for note in notes:
        print(note)


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="edits per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured typing time")
    parser.add_argument("--warmup", type=int, default=25, help="edits typed first, not counted")
    parser.add_argument("--nodes", type=int, default=3, help="collab nodes (at least 2)")
    parser.add_argument("--drain", type=float, default=10.0, help="max wait for stragglers (s)")
    parser.add_argument("--skip-reference", action="store_true", help="no y-websocket run")
    args = parser.parse_args()
    if args.nodes < 2 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--nodes must be at least 2; --rate and --seconds positive")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
