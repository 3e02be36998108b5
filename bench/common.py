"""What the real-time benchmarks share: services, seeded documents, traces, figures.

Every benchmark runs real ``collab serve`` processes (``tests.support.nodes``) and
talks to them only over 127.0.0.1. A benchmark that cannot run here (no Postgres,
no trace files) raises :class:`BenchSkipError`; :func:`run` prints the reason and
moves on to the next part instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import json
import math
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pycrdt import Doc, Text

from auth.access import Role
from auth.tokens import TokenSigner
from eventstore import apply_migrations, open_database
from tests.conftest import TEST_SECRET
from tests.realtime.seed import Seeded, seed_database
from tests.services import POSTGRES_URL, REDIS_URL, fresh_postgres_schema
from tests.support.nodes import RunningNode, running_node

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACES_ENV = "COLLAB_TRACES_DIR"
# (position, characters deleted, text inserted), as in josephg/editing-traces.
Patch = tuple[int, int, str]


class BenchSkipError(Exception):
    """A benchmark (or one part of it) cannot run on this machine; says why."""


# -- services and documents ---------------------------------------------------


def reachable(url: str, default_port: int) -> bool:
    """True when something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Raise :class:`BenchSkipError` unless Postgres answers."""
    if not reachable(POSTGRES_URL, 5432):
        raise BenchSkipError(f"Postgres is not reachable at {POSTGRES_URL.split('@')[-1]}")


def require_redis() -> None:
    """Raise :class:`BenchSkipError` unless Redis answers."""
    if not reachable(REDIS_URL, 6379):
        raise BenchSkipError(f"Redis is not reachable at {REDIS_URL}")


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """The URL of a fresh Postgres schema, dropped on exit."""
    require_postgres()
    async with fresh_postgres_schema() as url:
        yield url


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    """The URL of a new SQLite file in a temporary directory, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as directory:
        yield f"sqlite:///{directory}/collab.db"


async def seed_document(database_url: str) -> Seeded:
    """Migrate, then create a project with one document, a writer and a watcher."""
    async with open_database(database_url) as db:
        await apply_migrations(db)
        signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
        return await seed_database(db, signer, {"writer": Role.OWNER, "watcher": Role.VIEWER})


def node_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark node: its database and the tests' JWT secret."""
    return {"COLLAB_DATABASE_URL": database_url, "COLLAB_JWT_SECRET": TEST_SECRET, **extra}


@contextlib.asynccontextmanager
async def collab_nodes(
    database_url: str, size: int, *, redis_url: str | None = None, **extra: str
) -> AsyncIterator[list[RunningNode]]:
    """Run ``size`` nodes on one database (and one Redis, with a private prefix).

    Unlike ``tests.scaleout.cluster`` there are no TCP proxies in between: a proxy
    is a Python relay in this process, and it would share the measuring clock's
    event loop and CPU.
    """
    env = node_env(database_url, **extra)
    if redis_url is not None:
        env |= {"COLLAB_REDIS_URL": redis_url, "COLLAB_REDIS_PREFIX": f"bench-{uuid.uuid4().hex}"}
    with tempfile.TemporaryDirectory(prefix="collab-bench-nodes-") as directory:
        async with contextlib.AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    running_node(env, node_id=f"node{i}", workdir=Path(directory, f"node{i}"))
                )
                for i in range(size)
            ]
            yield nodes


def doc_url(ws_base: str, doc_id: str, token: str) -> str:
    """``ws://…/ws/{doc_id}?token=…``."""
    return f"{ws_base}/{doc_id}?token={token}"


def quiet_resets(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Event-loop exception handler that drops failed sends on sockets the server closed.

    pyclient sends from fire-and-forget tasks; once the server has closed a
    socket they fail, and the benchmarks report the close codes themselves.
    """
    if not isinstance(context.get("exception"), aiohttp.ClientConnectionResetError):
        loop.default_exception_handler(context)


# -- editing traces -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trace:
    """A real editing history: apply every transaction in order to get ``end``."""

    name: str
    start: str
    end: str
    txns: tuple[tuple[Patch, ...], ...]


def traces_dir() -> Path:
    """``$COLLAB_TRACES_DIR``, else the repository's ``traces/``."""
    configured = os.environ.get(TRACES_ENV, "").strip()
    return Path(configured) if configured else REPO_ROOT / "traces"


def load_trace(name: str) -> Trace:
    """Read ``<traces_dir>/<name>.json.gz``.

    Raises:
        BenchSkipError: the file is not there.
    """
    path = traces_dir() / f"{name}.json.gz"
    if not path.is_file():
        raise BenchSkipError(f"trace {path} not found (set {TRACES_ENV} to its directory)")
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        raw: dict[str, Any] = json.load(stream)
    txns = tuple(
        tuple((int(p[0]), int(p[1]), str(p[2])) for p in txn["patches"]) for txn in raw["txns"]
    )
    return Trace(name, raw["startContent"], raw["endContent"], txns)


class TraceText:
    """A pycrdt ``Text`` edited with a trace's character positions.

    Traces count Unicode characters, pycrdt counts UTF-8 bytes, and an offset
    inside a multi-byte character corrupts the text. Non-ASCII characters are
    rare in code, so the few there are are tracked to turn positions into bytes.
    """

    def __init__(self, text: Text) -> None:
        self.text = text
        self.length = len(str(text))
        # (character position, extra UTF-8 bytes) of every non-ASCII character, sorted.
        self._wide: list[tuple[int, int]] = [
            (i, len(ch.encode()) - 1) for i, ch in enumerate(str(text)) if not ch.isascii()
        ]

    def apply(self, patches: Sequence[Patch], offset: int = 0) -> None:
        """Apply one transaction's patches, positions shifted by ``offset`` characters."""
        for position, deleted, inserted in patches:
            at = position + offset
            if deleted:
                del self.text[self._byte(at) : self._byte(at + deleted)]
                self._wide = [
                    (p - deleted if p >= at else p, extra)
                    for p, extra in self._wide
                    if not at <= p < at + deleted
                ]
            if inserted:
                self.text.insert(self._byte(at), inserted)
                moved = [(p + len(inserted) if p >= at else p, e) for p, e in self._wide]
                added = [
                    (at + i, len(c.encode()) - 1) for i, c in enumerate(inserted) if ord(c) > 127
                ]
                self._wide = sorted(moved + added) if added else moved
            self.length += len(inserted) - deleted

    def _byte(self, position: int) -> int:
        return position + sum(extra for p, extra in self._wide if p < position)


def trace_updates(start: str, txns: Sequence[tuple[Patch, ...]]) -> tuple[list[bytes], str]:
    """The Yjs update of every transaction, and the text a fresh document gets from them.

    Encoding ahead of time keeps pycrdt work out of the timed replay, and
    rebuilding from the updates checks what will actually go over the wire.
    A non-empty start text goes first, as one more update.
    """
    doc: Doc[Any] = Doc()
    editor = TraceText(doc.get("content", type=Text))
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for patches in [((0, 0, start),), *txns] if start else txns:
        with doc.transaction():
            editor.apply(patches)
    doc.unobserve(subscription)
    fresh: Doc[Any] = Doc()
    for update in updates:
        fresh.apply_update(update)
    return updates, str(fresh.get("content", type=Text))


# -- measuring ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles (nearest rank) of a list of samples, in their unit."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted samples (nan when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: Sequence[float]) -> Summary:
    """p50/p95/p99/max of ``samples``."""
    ordered = sorted(samples)
    return Summary(
        count=len(ordered),
        p50=percentile(ordered, 0.50),
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
        max=ordered[-1] if ordered else math.nan,
    )


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a process, in MiB: now and its high-water mark."""

    rss: float
    peak: float


def memory_of(pid: int) -> Memory:
    """``VmRSS`` and ``VmHWM`` from ``/proc/<pid>/status``."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # reported in kB
    return Memory(fields.get("VmRSS", math.nan), fields.get("VmHWM", math.nan))


def pid_listening_on(port: int) -> int | None:
    """The process with a TCP socket listening on 127.0.0.1:``port`` (Linux only).

    The reference server is started by a helper that does not hand out its pid,
    so find the owner of the listening socket's inode instead.
    """
    inode = _listening_inode(port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return int(fd_dir.parent.name)
    return None


def _listening_inode(port: int) -> str | None:
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                columns = line.split()
                # columns: sl, local address, remote address, state (0A = LISTEN), ..., inode
                if columns[1].endswith(wanted) and columns[3] == "0A":
                    return columns[9]
    return None


async def fetch_metrics(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    """The unlabelled samples of a node's ``/metrics`` (Prometheus text format)."""
    async with http.get(f"{base_url}/metrics") as response:
        response.raise_for_status()
        body = await response.text()
    samples: dict[str, float] = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if line and not line.startswith("#") and "{" not in name:
            samples[name] = float(value)
    return samples


# -- output -------------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    """A number for a table cell; ``-`` for a missing (nan) value."""
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned text table: the first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [
            first.ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)),
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table: the first column left-aligned, the others right."""
    align = ["---", *("---:" for _ in headers[1:])]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def banner(title: str, details: Sequence[str]) -> None:
    """Print what runs, where and when, before the figures."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Other work on the machine skews every figure; the load average says how much.
    load = os.getloadavg()[0]
    print(f"# {title}  ({now}, {os.cpu_count()} CPUs, load average {load:.1f})")
    for detail in details:
        print(f"  {detail}")
    print()


async def run_part(name: str, part: Callable[[], Awaitable[None]]) -> bool:
    """Run one part of a benchmark; a :class:`BenchSkipError` is printed, not raised.

    Returns:
        True when the part ran, False when it was skipped.
    """
    try:
        await part()
    except BenchSkipError as exc:
        print(f"{name}: skipped: {exc}\n")
        return False
    return True
