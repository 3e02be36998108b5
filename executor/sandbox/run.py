"""The sandbox's entry, on the server side of the fork: ``run_code``.

Each run gets a fresh private directory and a supervisor process (forked
by the fork server ``child.py``, which the server starts once) that
confines the program, kills its whole tree on request and reaps every
orphan; ``parent.py`` drives it from the server. The modes and what they
protect are described in ``isolation.py``. The server only ever waits for
its own child, the fork server, so asyncio's child watcher keeps every
exit status. Output comes back over pipes, live, capped at
``output_bytes``.

Spawning uses no ``preexec_fn``, so ``run_code`` is safe in a threaded
process; everything done between fork and exec happens in the
single-threaded supervisor.

Call ``detect_protections()`` once at start-up and log its ``describe()``:
the first call probes the machine (about 0.1 s).
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import resource
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from executor.sandbox.isolation import (
    SANDBOX_HOME,
    SANDBOX_PATH,
    SANDBOX_TMP,
    Mode,
    NoFreeSlotError,
    bwrap_args,
    count_tasks_of,
    private_directory,
    sandbox_uid,
)
from executor.sandbox.isolation import Protections as Protections  # re-export
from executor.sandbox.isolation import detect_protections as detect_protections  # re-export
from executor.sandbox.languages import Language, LanguageError, get_language
from executor.sandbox.parent import Ending, OutputBuffer, supervise
from executor.sandbox.parent import OutputCallback as OutputCallback  # re-export
from executor.sandbox.seccomp import build_filter

__all__ = [
    "Limits",
    "OutputCallback",
    "Protections",
    "RunResult",
    "detect_protections",
    "run_code",
]

MAX_WALL_MS = 60_000
# bwrap's own two processes (the outer one and the namespace's init) run
# under the sandbox uid and count against RLIMIT_NPROC.
_BWRAP_PROCESSES = 2
_OPEN_FILES = 512
# Each of /sandbox, /tmp and /dev/shm holds this many maximum-size files.
_TMPFS_FILES = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Resource limits of one run; the defaults are what every run gets.

    Attributes:
        wall_ms: Wall-clock time, at most 60 s; then ``timed_out``.
        cpu_ms: CPU time per process, rounded up to whole seconds; then
            ``timed_out``.
        memory_bytes: Address space (Python) or data segment plus V8 heap
            (Node) per process.
        processes: Processes and threads of the run at once.
        output_bytes: stdout and stderr together; the rest is cut and
            ``truncated`` is set.
        file_bytes: Largest file the program may write.
    """

    wall_ms: int = 10_000
    cpu_ms: int = 10_000
    memory_bytes: int = 256 * 1024 * 1024
    processes: int = 64
    output_bytes: int = 1024 * 1024
    file_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.wall_ms <= MAX_WALL_MS:
            raise ValueError(f"wall_ms must be in 1..{MAX_WALL_MS}, not {self.wall_ms}")
        for name in ("cpu_ms", "memory_bytes", "processes", "output_bytes", "file_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended.

    Attributes:
        status: ``succeeded`` (exit 0), ``failed`` (nonzero exit, killed by a
            signal or stopped for too much output), ``timed_out`` (wall or
            CPU time), ``cancelled``, or ``error`` (it could not run).
        exit_code: The exit status as a shell reports it (128 + N for signal
            N); ``None`` when the sandbox stopped the program or it never ran.
        stdout: Captured standard output (UTF-8, invalid bytes replaced).
        stderr: Captured standard error.
        truncated: Output beyond ``Limits.output_bytes`` was dropped.
        duration_ms: Wall-clock time of the run.
        error: Why the run did not simply exit, for people; else ``None``.
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    duration_ms: int
    error: str | None


async def run_code(
    language: str,
    source: str,
    *,
    stdin: str = "",
    limits: Limits = Limits(),
    on_output: OutputCallback | None = None,
    cancel: asyncio.Event | None = None,
    mode: Mode | None = None,
) -> RunResult:
    """Run ``source`` in a sandbox and return how it ended.

    Never raises for anything the program does; problems of this machine
    (unknown language, missing runtime, no sandbox) come back as
    ``status="error"``.

    Args:
        language: A name registered in ``executor.sandbox.languages.LANGUAGES``.
        source: The program's text.
        stdin: Sent to its standard input, which is then closed.
        limits: Resource limits.
        on_output: Awaited with each piece of output as it arrives (only
            output within the limit). Its exceptions stop the run and
            propagate.
        cancel: Setting it stops the run (``status="cancelled"``).
        mode: ``"bubblewrap"`` or ``"fallback"`` to force a mode; by
            default the strongest that works here.

    Returns:
        The result; its ``status`` is one of ``succeeded``, ``failed``,
        ``timed_out``, ``cancelled`` or ``error``.
    """
    try:
        runtime = get_language(language)
    except LanguageError as exc:
        return _error(str(exc))
    protections = await asyncio.to_thread(detect_protections, mode)
    if protections.mode == "bubblewrap" and protections.bwrap is None:
        return _error("bubblewrap mode needs bwrap installed and usable (Debian: bubblewrap)")
    if cancel is not None and cancel.is_set():
        return RunResult("cancelled", None, "", "", False, 0, "cancelled before it started")
    try:
        with sandbox_uid() as uid:
            async with _workspace(uid) as workdir:
                config = _config(runtime, source, workdir, uid, limits, protections)
                output = OutputBuffer(limits.output_bytes, on_output)
                data = stdin.encode(errors="replace")
                ending = await supervise(
                    config,
                    data,
                    wall_ms=limits.wall_ms,
                    output=output,
                    cancel=cancel,
                    path=SANDBOX_PATH,
                )
    except NoFreeSlotError as exc:
        return _error(str(exc))
    return _result(ending, output, limits)


def _error(message: str) -> RunResult:
    return RunResult("error", None, "", "", False, 0, message)


@asynccontextmanager
async def _workspace(uid: int | None) -> AsyncIterator[str]:
    """The run's private host directory; removed off the event loop."""
    manager = private_directory(uid)
    path = manager.__enter__()
    try:
        yield path
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def _write_source(workdir: str, filename: str, source: str, uid: int | None) -> str:
    path = os.path.join(workdir, filename)
    # O_EXCL|O_NOFOLLOW: the directory is new and ours, never follow a link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    # Lone surrogates (possible in JSON) cannot be UTF-8: replace them.
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as file:
        file.write(source)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def _config(
    language: Language,
    source: str,
    workdir: str,
    uid: int | None,
    limits: Limits,
    protections: Protections,
) -> dict[str, Any]:
    """The supervisor's instructions for this run."""
    host_path = _write_source(workdir, language.filename, source, uid)
    env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if protections.bwrap is not None:
        inside = f"{SANDBOX_HOME}/{language.filename}"
        command = language.command(inside, memory_bytes=limits.memory_bytes)
        tmpfs = limits.file_bytes * _TMPFS_FILES
        prefix = [
            protections.bwrap,
            *bwrap_args(
                source=host_path,
                filename=language.filename,
                tmpfs_bytes=tmpfs,
                seccomp=protections.seccomp,
            ),
        ]
        argv, cwd = [*prefix, *command], "/"
        env |= {"HOME": SANDBOX_HOME, "TMPDIR": SANDBOX_TMP}
        extra = _BWRAP_PROCESSES
    else:
        argv = language.command(host_path, memory_bytes=limits.memory_bytes)
        cwd = workdir
        env |= {"HOME": workdir, "TMPDIR": workdir}
        extra = 0
    if uid is None:
        # RLIMIT_NPROC counts every task of the uid, here the server's own.
        extra += count_tasks_of(os.getuid())
    return {
        "argv": argv,
        "env": env,
        "cwd": cwd,
        "rlimits": _rlimits(language, limits, extra),
        "uid": uid,
        "netns": protections.bwrap is None and protections.network_isolated,
        "kill_uid": uid is not None,
        "memory_total": _memory_total(limits),
        "seccomp": _seccomp_hex() if protections.seccomp else None,
    }


@functools.cache
def _seccomp_hex() -> str | None:
    program = build_filter()
    return None if program is None else program.hex()


def _memory_total(limits: Limits) -> int:
    """Cap on the anonymous memory of all the run's processes together.

    Each process is held to ``memory_bytes`` by its rlimit, which fails
    allocations cleanly; this cap, checked by polling, stops a crowd of
    processes. The margin keeps it from firing before a single process's
    own limit does.
    """
    return limits.memory_bytes + max(64 * 1024 * 1024, limits.memory_bytes // 4)


def _rlimits(language: Language, limits: Limits, extra_processes: int) -> list[list[int]]:
    cpu = math.ceil(limits.cpu_ms / 1000)
    as_only = language.memory_rlimit == "address_space"
    memory = resource.RLIMIT_AS if as_only else resource.RLIMIT_DATA
    nproc = limits.processes + extra_processes
    return [
        # Soft: SIGXCPU; one second later the hard limit's SIGKILL.
        [resource.RLIMIT_CPU, cpu, cpu + 1],
        [memory, limits.memory_bytes, limits.memory_bytes],
        [resource.RLIMIT_NPROC, nproc, nproc],
        [resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes],
        [resource.RLIMIT_NOFILE, _OPEN_FILES, _OPEN_FILES],
        [resource.RLIMIT_CORE, 0, 0],
    ]


def _result(ending: Ending, output: OutputBuffer, limits: Limits) -> RunResult:
    status, exit_code, error = _status(ending, limits)
    return RunResult(
        status=status,
        exit_code=exit_code,
        stdout=output.text("stdout"),
        stderr=output.text("stderr"),
        truncated=output.truncated,
        duration_ms=ending.duration_ms,
        error=error,
    )


def _status(ending: Ending, limits: Limits) -> tuple[str, int | None, str | None]:
    """``(status, exit_code, error)`` of a run that was started."""
    if ending.reason == "cancelled":
        return "cancelled", None, "cancelled"
    if ending.reason == "timed_out":
        return "timed_out", None, f"wall-clock time limit of {limits.wall_ms} ms exceeded"
    if ending.reason == "flooded":
        return "failed", None, f"stopped after far more than {limits.output_bytes} bytes of output"
    report = ending.report
    if report is None:
        return "error", None, "the sandbox supervisor ended without a report"
    if report["kind"] == "error":
        return "error", None, f"could not start the program: {report['message']}"
    return _exit_status(report, limits)


def _exit_status(report: dict[str, Any], limits: Limits) -> tuple[str, int | None, str | None]:
    if report.get("stopped") == "memory":
        total = _memory_total(limits) // (1024 * 1024)
        return "failed", None, f"memory limit exceeded: its processes used over {total} MiB"
    code = int(report["code"])
    # bwrap reports a child killed by signal N as exit status 128 + N.
    signum = code if report["kind"] == "signaled" else code - 128 if 128 < code < 160 else 0
    exit_code = 128 + code if report["kind"] == "signaled" else code
    cpu_limit_ms = math.ceil(limits.cpu_ms / 1000) * 1000
    if signum == signal.SIGXCPU or (
        signum == signal.SIGKILL and int(report.get("cpu_ms", 0)) >= cpu_limit_ms
    ):
        return "timed_out", None, f"CPU time limit of {cpu_limit_ms} ms exceeded"
    if exit_code == 0:
        return "succeeded", 0, None
    if signum:
        return "failed", exit_code, f"terminated by {_signal_name(signum)}"
    return "failed", exit_code, None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
