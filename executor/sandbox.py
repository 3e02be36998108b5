"""Run untrusted code: ``run_code`` and its limits and result.

Each run gets a fresh private directory and a supervisor process
(``executor/supervisor.py``) that confines the program, kills its whole tree
on request and reaps every orphan; the modes and what they protect are
described in ``executor/isolation.py``. The server only ever waits for its
own child, the supervisor, so asyncio's child watcher keeps every exit
status. Output comes back over pipes, live, capped at ``output_bytes``.

Spawning uses no ``preexec_fn``, so ``run_code`` is safe in a threaded
process; everything done between fork and exec happens in the
single-threaded supervisor.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import json
import math
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from executor.isolation import (
    SANDBOX_HOME,
    SANDBOX_PATH,
    SANDBOX_TMP,
    SUPERVISOR,
    Mode,
    NoFreeSlotError,
    bwrap_args,
    count_tasks_of,
    private_directory,
    sandbox_uid,
)
from executor.isolation import Protections as Protections  # re-export
from executor.isolation import detect_protections as detect_protections  # re-export
from executor.languages import Language, LanguageError, get_language
from executor.seccomp import build_filter

__all__ = [
    "Limits",
    "OutputCallback",
    "Protections",
    "RunResult",
    "detect_protections",
    "run_code",
]

OutputCallback = Callable[[str, str], Awaitable[None]]
"""Called live with ``("stdout" | "stderr", text)`` while the program runs."""

MAX_WALL_MS = 60_000
_CHUNK = 64 * 1024
# bwrap's own two processes (the outer one and the namespace's init) run
# under the sandbox uid and count against RLIMIT_NPROC.
_BWRAP_PROCESSES = 2
_OPEN_FILES = 512
# Each of /sandbox, /tmp and /dev/shm holds this many maximum-size files.
_TMPFS_FILES = 2
# How long a killed run may take to report before its supervisor is killed.
_STOP_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Resource limits of one run (the defaults are the contract's).

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


class _Output:
    """Collects both streams under one byte budget and forwards them live."""

    def __init__(self, limit: int, on_output: OutputCallback | None) -> None:
        self._limit = limit
        # Past the limit output is drained and dropped; far past it the
        # program is stopped, so a flood does not run until the timeout.
        self._stop_at = 2 * limit + 1024 * 1024
        self._on_output = on_output
        self._kept = {"stdout": bytearray(), "stderr": bytearray()}
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")("replace") for name in self._kept
        }
        self._produced = 0
        self.truncated = False
        self.flooded = asyncio.Event()

    async def pump(self, stream: str, reader: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end."""
        while chunk := await reader.read(_CHUNK):
            await self._take(stream, chunk)
        await self._forward(stream, self._decoders[stream].decode(b"", final=True))

    async def _take(self, stream: str, chunk: bytes) -> None:
        room = self._limit - len(self._kept["stdout"]) - len(self._kept["stderr"])
        kept = chunk[: max(room, 0)]
        self.truncated = self.truncated or len(kept) < len(chunk)
        self._produced += len(chunk)
        if self._produced > self._stop_at:
            self.flooded.set()
        if kept:
            self._kept[stream] += kept
            await self._forward(stream, self._decoders[stream].decode(kept))

    async def _forward(self, stream: str, text: str) -> None:
        if text and self._on_output is not None:
            await self._on_output(stream, text)

    def text(self, stream: str) -> str:
        """Everything kept of ``stream``."""
        return self._kept[stream].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Ending:
    """Why the wait ended and what the supervisor reported."""

    reason: str  # "exited" | "timed_out" | "cancelled" | "flooded"
    report: dict[str, Any] | None
    duration_ms: int


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
        language: A name registered in ``executor.languages.LANGUAGES``.
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
                output = _Output(limits.output_bytes, on_output)
                data = stdin.encode(errors="replace")
                ending = await _supervise(config, data, limits, output, cancel)
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


async def _supervise(
    config: dict[str, Any],
    stdin: bytes,
    limits: Limits,
    output: _Output,
    cancel: asyncio.Event | None,
) -> _Ending:
    """Start the supervisor, stream the output, stop it when needed."""
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                SUPERVISOR,
                json.dumps(config | {"control_fd": theirs.fileno()}),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env={"PATH": SANDBOX_PATH},
            )
        ours.setblocking(False)
        try:
            return await _watch(process, ours, stdin, limits, output, cancel, started)
        finally:
            # Also on CancelledError or a failing on_output: never leave a run.
            await asyncio.shield(_stop(process, ours))


async def _watch(
    process: asyncio.subprocess.Process,
    control: socket.socket,
    stdin: bytes,
    limits: Limits,
    output: _Output,
    cancel: asyncio.Event | None,
    started: float,
) -> _Ending:
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    report = asyncio.create_task(_read_report(control))
    feeder = asyncio.create_task(_feed(process.stdin, stdin))
    pumps = [
        asyncio.create_task(output.pump("stdout", process.stdout)),
        asyncio.create_task(output.pump("stderr", process.stderr)),
    ]
    try:
        reason = await _first_ending(report, pumps, output.flooded, cancel, limits.wall_ms)
        if reason != "exited":
            await _send_stop(control)
        done = await _bounded(report, _STOP_SECONDS)
        duration_ms = round((time.monotonic() - started) * 1000)
        # The supervisor reaped everything, so the pipes are at EOF.
        await asyncio.wait(pumps, timeout=_STOP_SECONDS)
        for pump in pumps:
            if pump.done():
                pump.result()  # an on_output failure propagates
        return _Ending(reason, done, duration_ms)
    finally:
        for task in [report, feeder, *pumps]:
            task.cancel()
        await asyncio.gather(report, feeder, *pumps, return_exceptions=True)


async def _first_ending(
    report: asyncio.Task[dict[str, Any] | None],
    pumps: list[asyncio.Task[None]],
    flooded: asyncio.Event,
    cancel: asyncio.Event | None,
    wall_ms: int,
) -> str:
    """Wait for the end of the run, a flood, a cancel or the timeout."""
    waiters: dict[asyncio.Future[Any], str] = {asyncio.create_task(flooded.wait()): "flooded"}
    if cancel is not None:
        waiters[asyncio.create_task(cancel.wait())] = "cancelled"
    try:
        async with asyncio.timeout(wall_ms / 1000):
            while True:
                pending: list[asyncio.Future[Any]] = [report, *waiters]
                pending += [pump for pump in pumps if not pump.done()]
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if report in done:
                    return "exited"
                for task in done:
                    if task in waiters:
                        return waiters[task]
                    task.result()  # a pump: raises if on_output failed
    except TimeoutError:
        return "timed_out"
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _bounded(
    task: asyncio.Task[dict[str, Any] | None], seconds: float
) -> dict[str, Any] | None:
    done, _ = await asyncio.wait([task], timeout=seconds)
    return task.result() if done else None


async def _read_report(control: socket.socket) -> dict[str, Any] | None:
    """The supervisor's one JSON line, or ``None`` if it died without one."""
    loop = asyncio.get_running_loop()
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(control, 4096)
        if not chunk:
            break
        data += chunk
    try:
        report: dict[str, Any] = json.loads(data)
    except ValueError:
        return None
    return report


async def _send_stop(control: socket.socket) -> None:
    with contextlib.suppress(OSError):
        await asyncio.get_running_loop().sock_sendall(control, b"k")


async def _feed(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write stdin and close it; a program that exits early is not an error."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            writer.write(data)
            await writer.drain()
    writer.close()


async def _stop(process: asyncio.subprocess.Process, control: socket.socket) -> None:
    """Make sure the supervisor, and so the whole run, is gone."""
    if process.returncode is None:
        await _send_stop(control)
        try:
            async with asyncio.timeout(_STOP_SECONDS):
                await process.wait()
        except TimeoutError:
            # The sandbox dies with it: PR_SET_PDEATHSIG and --die-with-parent.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def _result(ending: _Ending, output: _Output, limits: Limits) -> RunResult:
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


def _status(ending: _Ending, limits: Limits) -> tuple[str, int | None, str | None]:
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
