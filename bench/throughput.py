"""Replay a real editing trace into one node while watchers follow, next to the reference.

Usage (from the repository root; Postgres is optional, the traces are needed)::

    .venv/bin/python -m bench.throughput [--trace sveltecomponent] [--rate 500]

One client replays the transactions of a trace from the repository's traces/
(or ``$COLLAB_TRACES_DIR``), one Yjs update each, as fast as it can (or ``--rate``
per second), while ``--watchers`` clients watch. The targets are one ``collab
serve`` node on SQLite (the embedded default), one on Postgres, and the npm
y-websocket reference server (in memory, no log).

The first table gives the time until the node's ``/metrics`` counted every update
as committed, and until every watcher shows the final text (end to end), with the
matching rates, and whether every watcher and the log (read back through
``GET /api/documents/{id}/content``) end with the trace's text. The second gives
events and commits as counted by ``/metrics`` (many events per commit is group
commit at work) and the server's memory (VmRSS before and after, VmHWM).

A node allows 200 messages a second per connection (bursts of 400) by default.
Faster replays run with ``COLLAB_UPDATES_PER_SECOND``/``COLLAB_UPDATE_BURST``
raised; the output says which limit was in force.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from bench.common import (
    BenchSkipError,
    Memory,
    banner,
    collab_nodes,
    doc_url,
    fetch_metrics,
    fmt,
    load_trace,
    memory_of,
    pid_listening_on,
    postgres_database,
    quiet_resets,
    run_part,
    seed_document,
    sqlite_database,
    table,
    trace_updates,
)
from collab.config import Settings
from collab.realtime.protocol import SyncType, sync_message
from tests.realtime.pyclient import PyClient, connect
from tests.support.yjs import YjsHarnessError, reference_server

_RAISED_LIMIT = 1_000_000
_DEFAULTS = Settings()
# The log is taken as complete, or stuck, after this long without a new event.
_STALL_SECONDS = 3.0
_POLL_SECONDS = 0.1
_SPEED = ("server", "updates", "send s", "commit s", "committed/s", "e2e s", "e2e/s", "watchers ok")
_SERVER = ("server", "log ok", "log events", "appended", "commits", "ev/commit", "commit ms")
_SERVER_MEMORY = ("RSS idle", "RSS end", "RSS peak")


@dataclass(frozen=True, slots=True)
class Plan:
    """The updates to send (one per transaction), the text they produce, and how."""

    trace: str
    updates: list[bytes]
    expected: str
    rate: float | None
    watchers: int
    timeout: float

    @property
    def raised_limits(self) -> bool:
        """Whether the replay needs a higher per-connection rate limit than the default."""
        return self.rate is None or self.rate > _DEFAULTS.updates_per_second


def _plan(args: argparse.Namespace) -> Plan:
    trace = load_trace(args.trace)
    txns = trace.txns[: args.txns] if args.txns else trace.txns
    updates, expected = trace_updates(trace.start, txns)
    if len(txns) == len(trace.txns) and expected != trace.end:
        raise BenchSkipError(f"trace {trace.name}: its updates do not give endContent")
    return Plan(trace.name, updates, expected, args.rate, args.watchers, args.timeout)


@dataclass(frozen=True, slots=True)
class Target:
    """A running server to replay into; ``http_url`` is None for the reference."""

    label: str
    writer_url: str
    watcher_url: str
    pid: int
    http_url: str | None = None
    doc_id: str = ""
    token: str = ""


@dataclass(frozen=True, slots=True)
class Replay:
    """Seconds from the first update, and how the clients ended."""

    sent: float
    committed: float
    done: float
    watchers_correct: int
    closes: list[int | None]


# -- the clients ----------------------------------------------------------------


async def _replay(writer: PyClient, plan: Plan) -> None:
    start = time.perf_counter()
    for index, update in enumerate(plan.updates):
        if writer.ws.closed:
            return
        await writer.ws.send_bytes(sync_message(SyncType.UPDATE, update))
        # Flat out still yields once per update, so the watchers keep reading.
        delay = start + (index + 1) / plan.rate - time.perf_counter() if plan.rate else 0.0
        await asyncio.sleep(max(0.0, delay))


async def _finish_time(watcher: PyClient, plan: Plan, start: float) -> float:
    """Seconds from ``start`` until the watcher shows the text (nan if it never does)."""
    end = plan.expected

    def finished() -> bool:
        # Comparing lengths first keeps the check cheap after each of many messages.
        return watcher.ws.closed or (len(watcher.text) == len(end) and str(watcher.text) == end)

    with contextlib.suppress(TimeoutError):
        await watcher.wait_for(finished, plan.timeout)
    return time.perf_counter() - start if str(watcher.text) == end else math.nan


async def _commit_time(target: Target, events: int, start: float) -> float:
    """Seconds from ``start`` until the node counted ``events`` (nan if it stalled)."""
    if target.http_url is None:
        return math.nan
    seen, changed = 0.0, time.perf_counter()
    async with aiohttp.ClientSession() as http:
        while time.perf_counter() - changed < _STALL_SECONDS:
            count = (await fetch_metrics(http, target.http_url))["collab_events_appended_total"]
            if count >= events:
                return time.perf_counter() - start
            if count != seen:
                seen, changed = count, time.perf_counter()
            await asyncio.sleep(_POLL_SECONDS)
    return math.nan


async def _watch_replay(target: Target, plan: Plan) -> Replay:
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        watchers = [
            await stack.enter_async_context(connect(http, target.watcher_url, client_id=1000 + i))
            for i in range(plan.watchers)
        ]
        writer = await stack.enter_async_context(connect(http, target.writer_url, client_id=1))
        start = time.perf_counter()
        waits = [asyncio.create_task(_finish_time(w, plan, start)) for w in watchers]
        commit = asyncio.create_task(_commit_time(target, len(plan.updates), start))
        await _replay(writer, plan)
        sent = time.perf_counter() - start
        finished = await asyncio.gather(*waits)
        committed = await commit
        closes = [c.ws.close_code if c.ws.closed else None for c in [writer, *watchers]]
    correct = [t for t in finished if not math.isnan(t)]
    done = max(correct) if len(correct) == len(finished) else math.nan
    return Replay(sent, committed, done, len(correct), closes)


# -- the server's side ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeFigures:
    """What a node reports after the replay (all nan for the reference)."""

    log_events: float = math.nan
    appended: float = math.nan
    commits: float = math.nan
    commit_ms: float = math.nan
    log_correct: bool | None = None


async def _node_figures(target: Target, expected: str) -> NodeFigures:
    if target.http_url is None:
        return NodeFigures()
    headers = {"Authorization": f"Bearer {target.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        metrics = await fetch_metrics(http, target.http_url)
        document = f"{target.http_url}/api/documents/{target.doc_id}"
        async with http.get(document) as r:
            r.raise_for_status()
            head = (await r.json())["head_seq"]
        async with http.get(f"{document}/content") as r:
            r.raise_for_status()
            content = await r.json()
    commits = metrics.get("collab_commit_seconds_count", 0.0)
    seconds = metrics.get("collab_commit_seconds_sum", 0.0)
    return NodeFigures(
        log_events=head,
        appended=metrics.get("collab_events_appended_total", math.nan),
        commits=commits,
        commit_ms=seconds / commits * 1000 if commits else math.nan,
        log_correct=content["text"] == expected,
    )


# -- one target -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """Everything measured against one target."""

    target: str
    updates: int
    watchers: int
    replay: Replay
    node: NodeFigures
    idle: Memory
    end: Memory

    def speed_cells(self) -> list[str]:
        """A row of the speed table."""
        r = self.replay
        return [
            self.target,
            str(self.updates),
            fmt(r.sent, 2),
            fmt(r.committed, 2),
            fmt(self.updates / r.committed, 0),
            fmt(r.done, 2),
            fmt(self.updates / r.done, 0),
            f"{r.watchers_correct}/{self.watchers}",
        ]

    def server_cells(self) -> list[str]:
        """A row of the server table."""
        n = self.node
        log = "-" if n.log_correct is None else ("yes" if n.log_correct else "NO")
        return [
            self.target,
            log,
            fmt(n.log_events, 0),
            fmt(n.appended, 0),
            fmt(n.commits, 0),
            fmt(n.appended / n.commits, 1),
            fmt(n.commit_ms, 1),
            *(fmt(m, 0) for m in (self.idle.rss, self.end.rss, self.end.peak)),
        ]

    def note(self) -> str:
        """Who the server disconnected, with which close code ("" when nobody)."""
        writer, *watchers = self.replay.closes
        codes = Counter(code for code in watchers if code is not None)
        if writer is None and not codes:
            return ""
        parts = [f"writer {'open' if writer is None else f'closed with {writer}'}"]
        parts += [f"{n} watchers closed with {code}" for code, n in sorted(codes.items())]
        if not math.isnan(self.node.log_events):
            parts.append(f"the log holds {self.node.log_events:,.0f} of {self.updates:,} updates")
        return f"{self.target}: {', '.join(parts)}"


async def _measure(target: Target, plan: Plan) -> Result:
    idle = memory_of(target.pid)
    replay = await _watch_replay(target, plan)
    node = await _node_figures(target, plan.expected)
    end = memory_of(target.pid)
    return Result(target.label, len(plan.updates), plan.watchers, replay, node, idle, end)


@contextlib.asynccontextmanager
async def _collab_target(label: str, database_url: str, plan: Plan) -> AsyncIterator[Target]:
    seeded = await seed_document(database_url)
    limits = {}
    if plan.raised_limits:
        limits = {
            "COLLAB_UPDATES_PER_SECOND": str(_RAISED_LIMIT),
            "COLLAB_UPDATE_BURST": str(_RAISED_LIMIT),
        }
    async with collab_nodes(database_url, 1, **limits) as (node,):
        yield Target(
            label,
            writer_url=doc_url(node.ws_url, seeded.doc_id, seeded.tokens["writer"]),
            watcher_url=doc_url(node.ws_url, seeded.doc_id, seeded.tokens["watcher"]),
            pid=node.process.pid,
            http_url=node.url,
            doc_id=seeded.doc_id,
            token=seeded.tokens["writer"],
        )


@contextlib.asynccontextmanager
async def _reference_target() -> AsyncIterator[Target]:
    try:
        async with reference_server() as server:
            pid = pid_listening_on(server.port)
            if pid is None:
                raise BenchSkipError("cannot find the reference server's process")
            url = doc_url(server.ws_url, "bench-throughput", "unused")
            yield Target("y-websocket reference", url, url, pid)
    except YjsHarnessError as exc:
        raise BenchSkipError(f"y-websocket reference server: {exc}") from None


async def _sqlite(plan: Plan) -> Result:
    async with sqlite_database() as url, _collab_target("collab SQLite", url, plan) as target:
        return await _measure(target, plan)


async def _postgres(plan: Plan) -> Result:
    async with postgres_database() as url, _collab_target("collab Postgres", url, plan) as target:
        return await _measure(target, plan)


async def _reference(plan: Plan) -> Result:
    async with _reference_target() as target:
        return await _measure(target, plan)


_PARTS: dict[str, Callable[[Plan], Awaitable[Result]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "reference": _reference,
}


# -- output and arguments ---------------------------------------------------------


def _pacing(plan: Plan) -> str:
    pace = "as fast as possible" if plan.rate is None else f"paced at {plan.rate:g} updates/s"
    if plan.raised_limits:
        limit = (
            f"node rate limit raised to {_RAISED_LIMIT:,}/s"
            " (COLLAB_UPDATES_PER_SECOND, COLLAB_UPDATE_BURST)"
        )
    else:
        limit = (
            f"node rate limit at its default ({_DEFAULTS.updates_per_second:g}/s,"
            f" burst {_DEFAULTS.update_burst})"
        )
    return f"{pace}; {limit}"


def _print(results: Sequence[Result]) -> None:
    print(table(_SPEED, [r.speed_cells() for r in results]))
    print()
    print(table((*_SERVER, *_SERVER_MEMORY), [r.server_cells() for r in results]))
    notes = [note for r in results if (note := r.note())]
    if notes:
        print("\ndisconnected by the server (pyclient does not reconnect):")
        print("\n".join(f"  {note}" for note in notes))


async def _add(
    results: list[Result], part: Callable[[Plan], Awaitable[Result]], plan: Plan
) -> None:
    results.append(await part(plan))


async def _main(args: argparse.Namespace) -> None:
    asyncio.get_running_loop().set_exception_handler(quiet_resets)
    try:
        plan = _plan(args)
    except BenchSkipError as exc:
        print(f"throughput: skipped: {exc}")
        return
    banner(
        f"throughput: replay of trace {plan.trace!r} by one client, {plan.watchers} watchers",
        [
            f"{len(plan.updates)} transactions (one update each) -> {len(plan.expected):,} chars",
            _pacing(plan),
            "all clients are pycrdt clients in this process; memory in MiB (VmRSS, VmHWM)",
        ],
    )
    results: list[Result] = []
    for name in args.targets:
        await run_part(name, functools.partial(_add, results, _PARTS[name], plan))
    if results:
        _print(results)


def _targets(value: str) -> Sequence[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = set(names) - set(_PARTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown target(s): {', '.join(sorted(unknown))}")
    return names


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trace", default="sveltecomponent", help="trace name in the traces dir")
    parser.add_argument("--txns", type=int, help="replay only the first N transactions")
    parser.add_argument("--watchers", type=int, default=5, help="clients that only watch")
    parser.add_argument("--rate", type=float, help="updates per second (default: flat out)")
    parser.add_argument("--timeout", type=float, default=60.0, help="max wait for watchers (s)")
    parser.add_argument(
        "--targets",
        type=_targets,
        default=list(_PARTS),
        help="comma-separated: " + ",".join(_PARTS),
    )
    args = parser.parse_args()
    if args.watchers < 1 or (args.rate is not None and args.rate <= 0):
        parser.error("--watchers must be at least 1 and --rate positive")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
