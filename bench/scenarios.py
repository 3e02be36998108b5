"""The workloads of ``make bench``, each run the same way against every target.

* :func:`fanout`: one writer sets a Y.Map key at a steady rate, N readers note
  when each key arrives (delivery latency = arrival - set, one clock).
* :func:`trace`: the writer streams a real editing trace as fast as it can while
  5 watchers wait for the final text (time until the last one has it).
* :func:`cross_node`: fan-out with readers on three nodes joined by Redis.

All clients are the stock npm Yjs client (:mod:`bench.stock`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Summary, Trace, load_trace, summarize, traces_dir
from bench.stock import endpoints, run_driver
from bench.targets import Target, cluster, log_figures, target

# The trace streamed by the throughput scenario; copies of it are chained
# (each typed after the previous one's end) to reach any length.
TRACE = "rustcode"
# Updates sent at the workload's rate before measuring (first connections,
# first commits and caches warming up are not what the figures are about).
WARMUP = 25


@dataclass(frozen=True, slots=True)
class FanoutResult:
    """Delivery latencies (ms) of one fan-out run, and how many never arrived."""

    target: str
    readers: int
    rate: float
    latencies: list[float]
    lost: int
    disconnects: int

    @property
    def summary(self) -> Summary:
        """p50/p95/p99/max of the latencies."""
        return summarize(self.latencies)


@dataclass(frozen=True, slots=True)
class TraceResult:
    """One trace run: time until every watcher had the final text, and checks."""

    target: str
    updates: int
    seconds: float
    watchers_ok: int
    watchers: int
    disconnects: int
    progress: list[tuple[float, int]]  # (seconds, characters at the slowest watcher)
    log_events: float
    log_ok: bool | None
    commits: float
    commit_ms: float

    @property
    def rate(self) -> float:
        """Updates per second end to end."""
        return self.updates / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class CrossNodeResult:
    """Same-node and cross-node latencies (ms) of one three-node run."""

    same: list[float]
    cross: list[float]
    lost: int
    disconnects: int


@dataclass(slots=True)
class TracePlan:
    """Encoded updates of the first ``count`` transactions and the text they give."""

    count: int
    directory: Path
    updates_file: Path = field(init=False)
    expected_file: Path = field(init=False)
    expected: str = ""

    def __post_init__(self) -> None:
        self.updates_file = self.directory / f"updates-{self.count}.bin"
        self.expected_file = self.directory / f"expected-{self.count}.txt"


async def plan_trace(count: int, directory: Path) -> TracePlan:
    """Encode ``count`` transactions of chained :data:`TRACE` copies, before any clock starts.

    The stock client encodes them (``driver.mjs`` mode ``encode``: one Yjs
    update per transaction); the text they give is checked against the trace's
    own end text, computed here from the patches. The result is kept in
    ``directory`` and reused while the trace file is unchanged.

    Raises:
        BenchSkipError: the trace file or Node.js is missing.
        RuntimeError: the encoded updates do not give the trace's text.
    """
    source = load_trace(TRACE)
    source_file = traces_dir() / f"{TRACE}.json.gz"
    # The version changes whenever the encoding does, so an old cache is never reused.
    plan = TracePlan(count, directory / f"{TRACE}-{source_file.stat().st_size}-v2")
    if plan.updates_file.exists() and plan.expected_file.exists():
        plan.expected = plan.expected_file.read_text(encoding="utf-8")
        return plan
    plan.directory.mkdir(parents=True, exist_ok=True)
    encoded = plan.directory / f"encoded-{count}.txt"
    spec = {
        "mode": "encode",
        "traceFile": str(source_file),
        "count": count,
        "updatesFile": str(plan.updates_file),
        "textFile": str(encoded),
    }
    await run_driver(spec, limit=600)
    expected = chained_text(source, count)
    if encoded.read_text(encoding="utf-8") != expected:
        raise RuntimeError(f"the encoded {TRACE} trace does not give its own end text")
    plan.expected_file.write_text(expected, encoding="utf-8")  # written last: marks it complete
    plan.expected = expected
    return plan


def chained_text(source: Trace, count: int) -> str:
    """The text of ``count`` transactions of chained copies of ``source``.

    Every copy only edits what it typed itself, so whole copies are just the
    end text and only the last, partial copy needs its patches applied.
    """
    per_copy = len(source.txns) + (1 if source.start else 0)
    whole, rest = divmod(count, per_copy)
    txns = [((0, 0, source.start),), *source.txns] if source.start else list(source.txns)
    text = ""
    for txn in txns[:rest]:
        for position, deleted, inserted in txn:
            text = text[:position] + inserted + text[position + deleted :]
    return source.end * whole + text


def _latencies(result: dict[str, object], warmup: int) -> tuple[list[float], int]:
    """Delivery latencies of every update after the first ``warmup``, and how many were lost."""
    sent, arrivals = result["sent"], result["arrivals"]
    if not isinstance(sent, list) or not isinstance(arrivals, list):
        raise RuntimeError(f"unexpected driver result: {sorted(result)}")
    latencies: list[float] = []
    lost = 0
    for reader in arrivals:
        for at, arrived in list(zip(sent, reader, strict=True))[warmup:]:
            if arrived is None:
                lost += 1
            else:
                latencies.append(float(arrived) - float(at))
    return latencies, lost


def _disconnects(result: dict[str, object]) -> int:
    closes = result.get("closes", [])
    return sum(int(c) for c in closes) if isinstance(closes, list) else 0


async def _fanout_run(
    writer: Target, readers: Sequence[Target], per_target: int, count: int, rate: float
) -> dict[str, object]:
    spec = {
        "mode": "fanout",
        "writer": endpoints([writer.writer])[0],
        "readers": endpoints([t.reader for t in readers for _ in range(per_target)]),
        "count": count,
        "intervalMs": 1000 / rate,
        "timeoutMs": 30_000,
    }
    return await run_driver(spec, limit=120 + count / rate)


async def fanout(
    kind: str, readers: int, count: int, rate: float, warmup: int = WARMUP
) -> FanoutResult:
    """One writer at ``rate`` updates/s, ``readers`` readers, ``count`` updates measured."""
    async with target(kind) as server:
        result = await _fanout_run(server, [server], readers, warmup + count, rate)
    latencies, lost = _latencies(result, warmup)
    return FanoutResult(kind, readers, rate, latencies, lost, _disconnects(result))


async def trace(kind: str, plan: TracePlan, watchers: int = 5) -> TraceResult:
    """Stream ``plan`` into a fresh document watched by ``watchers`` clients."""
    async with target(kind) as server:
        spec = {
            "mode": "trace",
            "writer": endpoints([server.writer])[0],
            "readers": endpoints([server.reader] * watchers),
            "updatesFile": str(plan.updates_file),
            "expectedFile": str(plan.expected_file),
            "timeoutMs": 600_000,
        }
        result = await run_driver(spec, limit=700)
        figures = await log_figures(server)
    done = [float(ms) for ms in result["doneMs"] if ms is not None]
    ok = sum(1 for flag in result["ok"] if flag)
    return TraceResult(
        target=kind,
        updates=plan.count,
        seconds=max(done) / 1000 if len(done) == watchers else float("nan"),
        watchers_ok=ok,
        watchers=watchers,
        disconnects=_disconnects(result),
        progress=[(float(t) / 1000, int(n)) for t, n in result["progress"]],
        log_events=figures.head_seq,
        log_ok=None if figures.text is None else figures.text == plan.expected,
        commits=figures.commits,
        commit_ms=figures.commit_ms,
    )


async def cross_node(
    per_node: int, count: int, rate: float, nodes: int = 3, warmup: int = WARMUP
) -> CrossNodeResult:
    """Writer on node 0; ``per_node`` readers on each of ``nodes`` nodes."""
    async with cluster(nodes) as servers:
        result = await _fanout_run(servers[0], servers, per_node, warmup + count, rate)
    arrivals = result["arrivals"]
    if not isinstance(arrivals, list):
        raise RuntimeError(f"unexpected driver result: {sorted(result)}")
    same = {**result, "arrivals": arrivals[:per_node]}
    cross = {**result, "arrivals": arrivals[per_node:]}
    same_ms, same_lost = _latencies(same, warmup)
    cross_ms, cross_lost = _latencies(cross, warmup)
    return CrossNodeResult(same_ms, cross_ms, same_lost + cross_lost, _disconnects(result))


def trace_cache() -> Path:
    """Where encoded traces are kept between runs."""
    return Path(tempfile.gettempdir(), "collab-bench-traces")
