"""`make bench-quick`: every benchmark scenario runs at smoke sizes and yields figures.

Timings and sizes are never checked (the machine is shared): only that each
scenario ran against each server, that the report has its tables and plots, that
the collab logs ended complete, and that every capacity figure was printed and
judged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import BEGIN, END
from tests.services import POSTGRES_URL, REDIS_URL, require
from tests.support.nodes import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.node]
SERVERS = ("stock", "Hocuspocus", "collab SQLite", "collab Postgres")
# In-memory servers: no log to check.
REFERENCES = ("| stock |", "| Hocuspocus |")
# Every figure of the capacity scenarios, and those measured on both servers.
CAPACITY_FIGURES = (
    "idle_memory",
    "reconnect_storm",
    "lone_client",
    "idle_rooms",
    "built",
    "log_bytes",
    "snapshots",
    "time_travel",
    "verify",
)
BOTH_SERVERS = ("idle_memory", "reconnect_storm", "lone_client")
CAPACITY_TARGETS = (
    "idle memory per connection",
    "reconnect storm",
    "keep-alive",
    "idle rooms",  # two: CPU and queries
    "log bytes per event",
    "snapshots kept",
    "time travel",
    "`collab replay --verify`",
)


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("bench-quick", "-m bench.suite --quick --out"),
        ("bench-capacity", "-m bench.suite --only capacity --out"),
    ],
)
def test_make_bench_targets_run_the_suite(target: str, command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "DEV_STAMP=pyproject.toml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert command in dry.stdout


def figure_tables(generated: str) -> dict[str, list[str]]:
    """The rows of each capacity figure's table, by figure name."""
    scenarios = generated.split("\n#### Capacity")[1]
    tables: dict[str, list[str]] = {}
    for block in scenarios.split("\n`")[1:]:
        name, _, rest = block.partition("`:")
        rows = [line for line in rest.split("\n\n")[1].splitlines() if line.startswith("|")]
        tables[name] = rows[2:]  # after the header and the alignment row
    return tables


def check_capacity(generated: str, stdout: str) -> None:
    """Every capacity figure has rows, on both servers where there are two, and is judged."""
    tables = figure_tables(generated)
    for figure in CAPACITY_FIGURES:
        assert tables.get(figure), (figure, sorted(tables))
    for figure in BOTH_SERVERS:
        servers = {row.split(" | ")[0] for row in tables[figure]}
        assert servers == {"| collab", "| y-websocket-server"}, (figure, tables[figure])
    assert all("| yes |" in row for row in tables["verify"])  # the replayed text is the log's
    targets = generated.split("##### Capacity targets")[1].split("#####")[0]
    for target in CAPACITY_TARGETS:
        judged = [
            line
            for line in targets.splitlines()
            if line.startswith(f"| {target}") and line.endswith(("| met |", "| **missed** |"))
        ]
        assert judged, (target, targets)
        assert target in stdout  # printed with the other targets


@pytest.mark.timeout(480)
def test_bench_quick_runs_every_scenario(tmp_path: Path) -> None:
    require(POSTGRES_URL, 5432, "database")
    require(REDIS_URL, 6379, "redis")
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed for the stock client")
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nKept as it is.\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=460,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped:" not in done.stdout and "FAILED" not in done.stdout, done.stdout
    report = out.read_text(encoding="utf-8")
    assert report.startswith("# Benchmarks\n\nKept as it is.\n")
    generated = report[report.index(BEGIN) : report.index(END)]
    for server in SERVERS:
        assert generated.count(f"| {server} |") >= 3  # two fan-outs and one trace
    trace_section = generated.split("#### Trace throughput")[1].split("####")[0]
    traces = [line for line in trace_section.splitlines() if " | 500 | " in line]
    assert len(traces) == len(SERVERS)
    for line in traces:
        assert "| 5/5 | 0 |" in line, line  # every watcher has the text, none disconnected
        assert line.startswith(REFERENCES) or "| 500 | yes |" in line, line  # 500 events, the text
    # collab against Hocuspocus too (information): two fan-outs and one trace per collab server
    against_hocuspocus = generated.split("#### collab / Hocuspocus")[1].split("####")[0]
    ratios = [line for line in against_hocuspocus.splitlines() if line.startswith("| fan-out")]
    ratios += [line for line in against_hocuspocus.splitlines() if line.startswith("| trace 500")]
    assert len(ratios) == 2 * 3, against_hocuspocus
    assert "@hocuspocus/server 3.4.4" in generated
    assert "vs Hocuspocus" in done.stdout
    assert "| same node |" in generated and "| cross node |" in generated
    assert "jobs, 2 workers" in generated
    assert "Not run" not in generated
    check_capacity(generated, done.stdout)
    for plot in ("fanout_latency.png", "trace_progress.png"):
        image = tmp_path / "benchmarks" / plot
        assert image.read_bytes().startswith(b"\x89PNG")
