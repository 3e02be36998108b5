"""The suite's report: the targets as ratios, tables, PNG plots, and the machine.

The targets compare collab with the stock server; the same ratios to Hocuspocus
are printed and tabled as information, with no verdict. The capacity scenarios'
targets and tables come from :mod:`bench.capacity_report`.

:func:`write_report` replaces the part of the output file between
:data:`BEGIN` and :data:`END` (the rest, the hand-written analysis, stays) and
returns the summary printed at the end of ``make bench``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.capacity import Row
from bench.capacity_report import (
    capacity_target_table,
    scenario_tables,
    summary_lines,
)
from bench.common import REPO_ROOT, fmt, markdown_table, summarize
from bench.scenarios import CrossNodeResult, FanoutResult, TraceResult
from bench.targets import HOCUSPOCUS, KINDS, POSTGRES, REFERENCES, STOCK

BEGIN = "<!-- bench:begin (written by `make bench`; edits here are lost) -->"
END = "<!-- bench:end -->"
INGEST_TARGET = 10_000.0
CROSS_FACTOR = 1.5
JOBS_TARGET = 20.0
JOBS_START_TARGET_MS = 50.0


@dataclass(frozen=True, slots=True)
class JobsResult:
    """Code execution: throughput of a burst and submit-to-start p50 on an idle queue."""

    workers: int
    jobs: int
    per_second: float
    idle_start_p50_ms: float


@dataclass(slots=True)
class Results:
    """Everything one suite run measured."""

    quick: bool
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    fanout: list[FanoutResult] = field(default_factory=list)
    traces: list[TraceResult] = field(default_factory=list)
    cross: CrossNodeResult | None = None
    jobs: JobsResult | None = None
    capacity: list[Row] = field(default_factory=list)  # the capacity modules' figure lines
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# -- the targets --------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else math.nan


def _fanout_rows(results: Results, reference: str = STOCK) -> list[list[str]]:
    """collab's fan-out latency over ``reference``'s: what, figures, whether both are ≤ 1x."""
    rows = []
    refs = {r.readers: r.summary for r in results.fanout if r.target == reference}
    for result in results.fanout:
        if result.target in REFERENCES or result.readers not in refs:
            continue
        mine, ref = result.summary, refs[result.readers]
        p50, p99 = _ratio(mine.p50, ref.p50), _ratio(mine.p99, ref.p99)
        rows.append(
            [
                f"fan-out 1 → {result.readers}, {result.target}",
                f"p50 {fmt(mine.p50, 2)} / {fmt(ref.p50, 2)} ms = {fmt(p50, 2)}x;"
                f" p99 {fmt(mine.p99, 2)} / {fmt(ref.p99, 2)} ms = {fmt(p99, 2)}x",
                _verdict(p50 <= 1 and p99 <= 1 and result.lost == 0),
            ]
        )
    return rows


def _trace_rows(results: Results, reference: str = STOCK) -> list[list[str]]:
    """collab's trace time over ``reference``'s: what, figures, whether ≤ 1x and complete."""
    rows = []
    refs = {r.updates: r for r in results.traces if r.target == reference}
    for result in results.traces:
        ref = refs.get(result.updates)
        if result.target in REFERENCES or ref is None:
            continue
        ratio = _ratio(result.seconds, ref.seconds)
        rows.append(
            [
                f"trace {result.updates:,}, {result.target}",
                f"{fmt(result.seconds, 2)} / {fmt(ref.seconds, 2)} s = {fmt(ratio, 2)}x;"
                f" {'every keystroke in the log' if _complete(result) else 'INCOMPLETE'}",
                _verdict(ratio <= 1 and _complete(result)),
            ]
        )
    return rows


def _complete(result: TraceResult) -> bool:
    """Every watcher has the text, nobody was disconnected, one log event per keystroke.

    A client that reconnects resends what the server lacks as one merged
    update, so a disconnect would show as fewer events than transactions.
    """
    return (
        result.watchers_ok == result.watchers
        and result.disconnects == 0
        and result.log_ok is True
        and result.log_events == result.updates
    )


def _ingest_rows(results: Results) -> list[list[str]]:
    runs = [r for r in results.traces if r.target == POSTGRES]
    if not runs:
        return []
    best = max(runs, key=lambda r: r.rate)
    ok = best.rate >= INGEST_TARGET and _complete(best)
    text = f"{best.rate:,.0f} durable updates/s ({best.updates:,}), {best.disconnects} disconnects"
    return [["ingest, Postgres", text, _verdict(ok)]]


def _cross_rows(results: Results) -> list[list[str]]:
    if results.cross is None:
        return []
    same, cross = summarize(results.cross.same), summarize(results.cross.cross)
    ratio = _ratio(cross.p99, same.p99)
    text = f"p99 {fmt(cross.p99, 2)} / {fmt(same.p99, 2)} ms = {fmt(ratio, 2)}x (≤ {CROSS_FACTOR}x)"
    return [["cross-node, 3 nodes", text, _verdict(ratio <= CROSS_FACTOR)]]


def _jobs_rows(results: Results) -> list[list[str]]:
    if results.jobs is None:
        return []
    jobs = results.jobs
    return [
        [
            "jobs, 2 workers",
            f"{jobs.per_second:.1f} jobs/s; idle submit→start p50 {jobs.idle_start_p50_ms:.0f} ms",
            _verdict(
                jobs.per_second >= JOBS_TARGET and jobs.idle_start_p50_ms <= JOBS_START_TARGET_MS
            ),
        ]
    ]


def target_rows(results: Results) -> list[list[str]]:
    """One row per target: what, the figures, met or missed."""
    return [
        *_fanout_rows(results),
        *_trace_rows(results),
        *_ingest_rows(results),
        *_cross_rows(results),
        *_jobs_rows(results),
    ]


def hocuspocus_rows(results: Results) -> list[list[str]]:
    """The fan-out and trace ratios again, to Hocuspocus: information, not targets."""
    rows = [*_fanout_rows(results, HOCUSPOCUS), *_trace_rows(results, HOCUSPOCUS)]
    return [[what, figures] for what, figures, _ in rows]


# -- tables -------------------------------------------------------------------


def _fanout_table(results: Results) -> str:
    rows = []
    for r in results.fanout:
        s = r.summary
        rows.append(
            [
                r.target,
                str(r.readers),
                f"{r.rate:g}",
                f"{s.count:,}",
                *(fmt(v, 2) for v in (s.p50, s.p95, s.p99, s.max)),
                str(r.lost),
                str(r.disconnects),
            ]
        )
    headers = ["server", "readers", "updates/s", "deliveries"]
    headers += ["p50 ms", "p95 ms", "p99 ms", "max ms", "lost", "disconnects"]
    return markdown_table(headers, rows)


def _trace_table(results: Results) -> str:
    rows = []
    for r in results.traces:
        log = "-" if r.log_ok is None else ("yes" if r.log_ok else "**no**")
        rows.append(
            [
                r.target,
                f"{r.updates:,}",
                fmt(r.seconds, 2),
                fmt(r.rate, 0),
                f"{r.watchers_ok}/{r.watchers}",
                str(r.disconnects),
                fmt(r.log_events, 0),
                log,
                fmt(r.commits, 0),
                fmt(r.updates / r.commits if r.commits else math.nan, 1),
                fmt(r.commit_ms, 2),
            ]
        )
    headers = ["server", "transactions", "seconds", "updates/s", "watchers ok", "disconnects"]
    # disconnects: of the watchers and the writer, after their first sync
    headers += ["log events", "log text ok", "commits", "ev/commit", "commit ms"]
    return markdown_table(headers, rows)


def _cross_table(results: Results) -> str:
    if results.cross is None:
        return "(not run)"
    rows = []
    for label, samples in (("same node", results.cross.same), ("cross node", results.cross.cross)):
        s = summarize(samples)
        rows.append([label, f"{s.count:,}", *(fmt(v, 2) for v in (s.p50, s.p95, s.p99, s.max))])
    table = markdown_table(["path", "deliveries", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    lost = f"lost {results.cross.lost}, disconnects {results.cross.disconnects}"
    return f"{table}\n\n{lost}"


# -- plots --------------------------------------------------------------------


def _plot_fanout(results: Results, path: Path) -> None:
    counts = sorted({r.readers for r in results.fanout})
    figure, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3.6), squeeze=False)
    for axis, readers in zip(axes[0], counts, strict=True):
        for r in (r for r in results.fanout if r.readers == readers):
            ordered = sorted(r.latencies)
            if ordered:
                fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
                axis.plot(ordered, fractions, label=r.target)
        axis.set_xscale("log")
        axis.set_title(f"1 writer → {readers} readers")
        axis.set_xlabel("delivery latency (ms, log scale)")
        axis.set_ylabel("fraction delivered")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _plot_traces(results: Results, path: Path) -> None:
    sizes = sorted({r.updates for r in results.traces})
    figure, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.6), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for r in (r for r in results.traces if r.updates == size):
            axis.plot([t for t, _ in r.progress], [n for _, n in r.progress], label=r.target)
        axis.set_title(f"trace, {size:,} transactions, 5 watchers")
        axis.set_xlabel("seconds")
        axis.set_ylabel("characters at the slowest watcher")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# -- the machine ----------------------------------------------------------------


def _npm_version(directory: str, package: str) -> str:
    manifest = REPO_ROOT / directory / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def _node_version() -> str:
    try:
        done = subprocess.run(
            ["node", "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def machine_lines(results: Results) -> list[str]:
    """Cores, load, and the versions of everything that took part."""
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("aiohttp", "pycrdt", "asyncpg", "redis")
    )
    before = " ".join(f"{v:.2f}" for v in results.load_before)
    after = " ".join(f"{v:.2f}" for v in results.load_after)
    return [
        f"- CPUs: {os.cpu_count()}; load average before {before}, after {after}",
        f"- Python {platform.python_version()} ({versions}); SQLite {sqlite3.sqlite_version}",
        f"- Node {_node_version()}; client yjs {_npm_version('bench/js', 'yjs')},"
        f" y-websocket {_npm_version('bench/js', 'y-websocket')};"
        f" stock server @y/websocket-server"
        f" {_npm_version('tests/js', '@y/websocket-server')};"
        f" Hocuspocus @hocuspocus/server {_npm_version('bench/js', '@hocuspocus/server')}"
        f" with @hocuspocus/provider {_npm_version('bench/js', '@hocuspocus/provider')}",
    ]


# -- the file ---------------------------------------------------------------------


def _plot_link(title: str, path: str | None) -> list[str]:
    """The image and a blank line, or nothing when the plot was not drawn."""
    return [] if path is None else [f"![{title}]({path})", ""]


def _capacity_section(results: Results) -> list[str]:
    heading = "#### Capacity (each scenario in its own process; one table row per JSON line)"
    if not results.capacity:
        return [heading, "", "(not run)", ""]
    return [
        heading,
        "",
        "##### Capacity targets (collab; the stock server where it has a counterpart, same run)",
        "",
        capacity_target_table(results.capacity),
        "",
        *scenario_tables(results.capacity, results.quick),
    ]


def render(results: Results, plots: dict[str, str]) -> str:
    """The generated part of the report."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        BEGIN,
        f"### Run of {now}{' (quick: smoke sizes, figures meaningless)' if results.quick else ''}",
        "",
        *machine_lines(results),
        "",
        "#### Targets (collab / stock server, same run)",
        "",
        markdown_table(["target", "figures", "verdict"], target_rows(results)),
        "",
        "#### collab / Hocuspocus, same run (information, no target)",
        "",
        markdown_table(["comparison", "figures"], hocuspocus_rows(results)),
        "",
        "#### Fan-out latency (1 writer, Y.Map updates; stock npm clients, Hocuspocus' own)",
        "",
        _fanout_table(results),
        "",
        *_plot_link("fan-out latency", plots.get("fanout")),
        "#### Trace throughput (the client streams, 5 watchers; Hocuspocus' own client for it)",
        "",
        _trace_table(results),
        "",
        *_plot_link("trace progress", plots.get("traces")),
        "#### Three nodes on Redis (Postgres)",
        "",
        _cross_table(results),
        "",
        *_capacity_section(results),
    ]
    if results.skipped or results.failed:
        parts += ["#### Not run", ""]
        parts += [f"- skipped: {s}" for s in results.skipped]
        parts += [f"- failed: {s}" for s in results.failed]
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def write_report(results: Results, out: Path) -> str:
    """Write the plots and the marked part of ``out``; return the targets summary."""
    plot_dir = out.parent / out.stem
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots = {}
    if results.fanout:
        plots["fanout"] = "fanout_latency.png"
        _plot_fanout(results, plot_dir / plots["fanout"])
    if results.traces:
        plots["traces"] = "trace_progress.png"
        _plot_traces(results, plot_dir / plots["traces"])
    generated = render(results, {k: f"{out.stem}/{v}" for k, v in plots.items()})
    existing = out.read_text(encoding="utf-8") if out.exists() else ""
    if BEGIN in existing and END in existing:
        head, _, rest = existing.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + generated + tail
    else:
        text = (existing + "\n\n" if existing else "# Benchmarks\n\n") + generated + "\n"
    out.write_text(text, encoding="utf-8")
    rows = target_rows(results)
    lines = [f"{what}: {figures} [{verdict.strip('*')}]" for what, figures, verdict in rows]
    lines += [
        f"{what} vs Hocuspocus: {figures} [information]"
        for what, figures in hocuspocus_rows(results)
    ]
    lines += summary_lines(results.capacity)
    lines += [f"skipped: {s}" for s in results.skipped]
    lines += [f"FAILED: {s}" for s in results.failed]
    return "\n".join(lines)


__all__ = ["KINDS", "JobsResult", "Results", "write_report"]
