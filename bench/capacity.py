"""The capacity scenarios of ``make bench``, each run as its own process.

Each ``bench.capacity_*`` module prints one JSON line per figure on stdout
(``{"bench": ..., "figure": ..., ...}``); the suite runs it as a subprocess and
keeps every line as it is, so a module may add keys or print a figure more
than once (one row each) without the suite changing. Running them apart also
keeps their ten thousand clients, rooms and events out of the suite's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.common import REPO_ROOT, BenchSkipError, require_postgres, require_redis

# A figure line as the module printed it.
Row = dict[str, Any]
# Time a scenario gets to clean up (close its servers) after an interrupt.
_GRACE_SECONDS = 30.0
_STDERR_TAIL = 800


@dataclass(frozen=True, slots=True)
class CapacityScenario:
    """One capacity module and the arguments of a full and of a quick run."""

    name: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    limit_seconds: float  # a full run that takes longer has failed
    needs_redis: bool = False

    def arguments(self, quick: bool) -> tuple[str, ...]:
        """The command-line arguments of this run's size."""
        return self.quick if quick else self.full

    def command(self, quick: bool) -> str:
        """How to run it by hand, for the report."""
        return " ".join(["python -m", self.module, *self.arguments(quick)])


CONNECTIONS = CapacityScenario(
    "idle connections and reconnect storm",
    "bench.capacity_connections",
    full=("--clients", "10000", "--storm", "5000"),
    quick=("--quick",),
    limit_seconds=3600,
)
IDLE_ROOMS = CapacityScenario(
    "idle rooms",
    "bench.capacity_idle_rooms",
    full=("--rooms", "10000", "--projects", "1000"),
    quick=("--quick",),
    limit_seconds=1800,
    needs_redis=True,
)
LOG = CapacityScenario(
    "event log size, time travel, verify",
    "bench.capacity_log",
    full=("--events", "65000,260000"),
    quick=("--quick",),
    limit_seconds=3600,
)
KEEPALIVE = CapacityScenario(
    "keep-alive, lone client",
    "bench.capacity_keepalive",
    full=("--seconds", "600"),
    quick=("--quick",),
    limit_seconds=600 + 300,
)
# Run one after the other, in this order; the keep-alive runs beside them all.
FOREGROUND = (CONNECTIONS, IDLE_ROOMS, LOG)
SCENARIOS = (*FOREGROUND, KEEPALIVE)


@dataclass(slots=True)
class CapacityRun:
    """A started scenario process."""

    scenario: CapacityScenario
    process: asyncio.subprocess.Process
    output: asyncio.Task[tuple[bytes, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        # Read both pipes from the start, so a chatty scenario never blocks on a full one.
        self.output = asyncio.ensure_future(self.process.communicate())


def require_services(scenario: CapacityScenario) -> None:
    """Raise :class:`BenchSkipError` when something the scenario needs is missing."""
    require_postgres()
    if scenario.needs_redis:
        require_redis()
    if shutil.which("node") is None:
        raise BenchSkipError("Node.js is not installed")


async def start(scenario: CapacityScenario, quick: bool) -> CapacityRun:
    """Start the scenario's module in its own process.

    Raises:
        BenchSkipError: a service it needs is missing.
    """
    require_services(scenario)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        scenario.module,
        *scenario.arguments(quick),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group: the node harnesses it starts stay in it (see stop()).
        start_new_session=True,
    )
    return CapacityRun(scenario, process)


async def collect(run: CapacityRun, quick: bool, rows: list[Row]) -> None:
    """Wait for the process (within its limit) and add its figure lines to ``rows``.

    The lines printed before a failure are added too: they are figures.

    Raises:
        RuntimeError: it failed, printed no figure, or ran past its limit.
    """
    limit = run.scenario.limit_seconds / (3 if quick else 1)
    try:
        async with asyncio.timeout(limit):
            stdout, stderr = await asyncio.shield(run.output)
    except TimeoutError:
        await stop(run)
        raise RuntimeError(f"{run.scenario.module} ran past {limit:.0f} s") from None
    printed = parse_rows(stdout.decode(errors="replace"))
    rows += printed
    if run.process.returncode != 0 or not printed:
        # One line: it is listed in the report's "Not run".
        tail = " / ".join(stderr.decode(errors="replace").strip()[-_STDERR_TAIL:].splitlines())
        raise RuntimeError(
            f"{run.scenario.module} exited with {run.process.returncode}"
            f" after {len(printed)} figures: {tail}"
        )


async def stop(run: CapacityRun) -> None:
    """Interrupt the process so it closes its servers; kill them all if it does not.

    A process started from a shell's background job inherits an ignored SIGINT,
    so the interrupt may go unheard. Then every process it started is killed
    with it: its group, and each descendant's group (collab nodes run in
    sessions of their own). Their database schemas stay behind.
    """
    if run.process.returncode is not None:
        return
    run.process.send_signal(signal.SIGINT)
    try:
        async with asyncio.timeout(_GRACE_SECONDS):
            await asyncio.shield(run.output)
    except TimeoutError:
        ours = os.getpgid(0)
        for pid in [run.process.pid, *descendants(run.process.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != ours:  # never the suite's own
                    os.killpg(group, signal.SIGKILL)
        await run.process.wait()


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, [])
    return found


def parse_rows(stdout: str) -> list[Row]:
    """Every JSON object line of ``stdout`` that names a figure; anything else is ignored."""
    rows = []
    for line in stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "figure" in row:
            rows.append(row)
    return rows
