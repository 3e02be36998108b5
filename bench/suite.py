"""``make bench``: every scenario against collab (SQLite, Postgres) and the stock server, one run.

Usage (from the repository root, Postgres and Redis running, Node.js installed)::

    .venv/bin/python -m bench.suite [--quick] [--out docs/benchmarks.md]
        [--only PART ...] [--skip PART ...] [--skip-jobs]

Runs, in order: fan-out latency (1 writer, 5/50/150 readers), trace throughput
(the first 50,000 and then all 259,778 transactions), three nodes on Redis,
code execution on two workers, and the capacity scenarios (idle connections
and a reconnect storm, idle rooms, the event log), each its own process; the
ten-minute keep-alive scenario runs in the background from the start and is
collected at the end. Prints the targets (ratios to the stock server, limits)
and writes the report (tables, PNG plots, the machine's cores, load and
versions) into the marked part of ``--out``. ``--quick`` runs every scenario at
small sizes: a smoke run whose figures mean nothing. ``--only`` and ``--skip``
choose among the parts: fan-out, trace, cross-node, jobs, capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import capacity
from bench import jobs as jobs_bench
from bench.capacity import FOREGROUND, KEEPALIVE, CapacityRun, CapacityScenario
from bench.common import REPO_ROOT, BenchSkipError, quiet_resets
from bench.report import JobsResult, Results, write_report
from bench.scenarios import TracePlan, cross_node, fanout, plan_trace, trace, trace_cache
from bench.targets import KINDS, POSTGRES, SQLITE, STOCK

FULL_TRACE = 259_778
PARTS = ("fan-out", "trace", "cross-node", "jobs", "capacity")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each scenario does."""

    fanout: tuple[tuple[int, int, float], ...]  # (readers, updates, updates/s)
    traces: tuple[tuple[int, tuple[str, ...]], ...]  # (transactions, targets)
    cross: tuple[int, int, float]  # (readers per node, updates, updates/s)
    jobs: tuple[int, int]  # (jobs queued at once, jobs one at a time)


FULL = Sizes(
    fanout=((5, 300, 200.0), (50, 250, 50.0), (150, 250, 50.0)),
    traces=((50_000, KINDS), (FULL_TRACE, KINDS)),
    cross=(5, 500, 50.0),
    jobs=(200, 30),
)
QUICK = Sizes(
    fanout=((2, 20, 100.0), (5, 20, 100.0)),
    traces=((500, KINDS),),
    cross=(2, 20, 50.0),
    jobs=(6, 3),
)


async def _step(results: Results, name: str, step: Callable[[], Awaitable[None]]) -> None:
    started = time.perf_counter()
    print(f"- {name} ...", flush=True)
    try:
        await step()
    except BenchSkipError as exc:
        results.skipped.append(f"{name}: {exc}")
        print(f"  skipped: {exc}", flush=True)
    except RuntimeError as exc:
        results.failed.append(f"{name}: {exc}")
        print(f"  FAILED: {exc}", flush=True)
    else:
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)


async def _fanouts(sizes: Sizes, results: Results) -> None:
    for readers, count, rate in sizes.fanout:
        for kind in KINDS:

            async def one(
                kind: str = kind, readers: int = readers, count: int = count, rate: float = rate
            ) -> None:
                results.fanout.append(await fanout(kind, readers, count, rate))

            await _step(results, f"fan-out {kind}, {readers} readers", one)


async def _traces(sizes: Sizes, results: Results) -> None:
    for count, kinds in sizes.traces:
        try:
            plan = await plan_trace(count, trace_cache())
        except BenchSkipError as exc:
            results.skipped.append(f"trace {count}: {exc}")
            continue
        except RuntimeError as exc:
            results.failed.append(f"trace {count}: {exc}")
            continue
        for kind in kinds:

            async def one(kind: str = kind, plan: TracePlan = plan) -> None:
                results.traces.append(await trace(kind, plan))

            await _step(results, f"trace {count:,} {kind}", one)


async def _cross(sizes: Sizes, results: Results) -> None:
    per_node, count, rate = sizes.cross

    async def one() -> None:
        results.cross = await cross_node(per_node, count, rate)

    await _step(results, "cross-node (3 nodes, Redis)", one)


async def _jobs(sizes: Sizes, results: Results) -> None:
    queued, idle = sizes.jobs

    async def one() -> None:
        args = argparse.Namespace(concurrency=2, jobs=queued, idle_jobs=idle)
        log_dir = Path(tempfile.gettempdir(), "collab-bench-jobs")
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        row = await jobs_bench._measure(args, 2, log_dir)
        results.jobs = JobsResult(row.workers, row.jobs, row.per_second, row.idle_p50_ms)

    await _step(results, "jobs (2 workers)", one)


async def _collect_capacity(run: CapacityRun, results: Results) -> None:
    """Wait for a capacity process; keep and echo its figure lines, even those before a failure."""
    rows: list[capacity.Row] = []
    try:
        await capacity.collect(run, results.quick, rows)
    finally:
        results.capacity += rows
        for row in rows:
            print(f"  {json.dumps(row)}", flush=True)
        await capacity.stop(run)


async def _capacity(results: Results) -> None:
    for scenario in FOREGROUND:

        async def one(scenario: CapacityScenario = scenario) -> None:
            await _collect_capacity(await capacity.start(scenario, results.quick), results)

        await _step(results, f"capacity: {scenario.name}", one)


async def _start_keepalive(results: Results) -> CapacityRun | None:
    """Start the keep-alive scenario: it idles for minutes, so it runs beside the others.

    One quiet client per server costs the machine next to nothing (checked in
    bench/README.md: fan-out figures with and without it running).
    """
    print(f"- capacity: {KEEPALIVE.name}, in the background until the end ...", flush=True)
    try:
        return await capacity.start(KEEPALIVE, results.quick)
    except BenchSkipError as exc:
        results.skipped.append(f"capacity: {KEEPALIVE.name}: {exc}")
        print(f"  skipped: {exc}", flush=True)
        return None


async def run(sizes: Sizes, *, quick: bool, parts: frozenset[str]) -> Results:
    """Run the chosen parts (all of :data:`PARTS` by default) and collect the results."""
    asyncio.get_running_loop().set_exception_handler(quiet_resets)
    results = Results(quick=quick, load_before=os.getloadavg())
    keepalive = await _start_keepalive(results) if "capacity" in parts else None
    try:
        if "fan-out" in parts:
            await _fanouts(sizes, results)
        if "trace" in parts:
            await _traces(sizes, results)
        if "cross-node" in parts:
            await _cross(sizes, results)
        if "jobs" in parts:
            await _jobs(sizes, results)
        if "capacity" in parts:
            await _capacity(results)
        if keepalive is not None:
            await _step(
                results,
                f"capacity: {KEEPALIVE.name} (collected)",
                lambda: _collect_capacity(keepalive, results),
            )
    finally:
        if keepalive is not None:
            await capacity.stop(keepalive)
    results.load_after = os.getloadavg()
    return results


def chosen_parts(args: argparse.Namespace) -> frozenset[str]:
    """``--only`` (default: every part) minus ``--skip`` and ``--skip-jobs``."""
    skipped = set(args.skip) | ({"jobs"} if args.skip_jobs else set())
    return frozenset(args.only or PARTS) - skipped


def main() -> None:
    """Parse the arguments, run, print the ratios and write the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=[], help="run only these parts")
    parser.add_argument("--skip", nargs="+", choices=PARTS, default=[], help="leave these out")
    parser.add_argument("--skip-jobs", action="store_true", help="the same as --skip jobs")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    results = asyncio.run(run(sizes, quick=args.quick, parts=chosen_parts(args)))
    summary = write_report(results, args.out)
    print()
    print(summary)


__all__ = ["POSTGRES", "SQLITE", "STOCK", "main", "run"]

if __name__ == "__main__":
    main()
