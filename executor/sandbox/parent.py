"""The server's side of the fork: driving the supervisor process of one run.

``supervise`` has the fork server (``child.py``, started once per process
as a script, without ``preexec_fn``, so it is safe in a threaded server)
fork a supervisor wired to fresh pipes, feeds stdin, streams stdout and
stderr into an ``OutputBuffer`` under one byte budget, and asks the
supervisor to kill the run on timeout, cancel or a flood of output.
Whatever happens, including cancellation of the calling task, the
supervisor is gone when ``supervise`` returns. The server's only child is
the fork server; a supervisor is watched through its pidfd.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import concurrent.futures
import contextlib
import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from executor.sandbox.child import SCRIPT as CHILD_SCRIPT

OutputCallback = Callable[[str, str], Awaitable[None]]
"""Called live with ``("stdout" | "stderr", text)`` while the program runs."""

_CHUNK = 64 * 1024
# How long a killed run may take to report before its supervisor is killed.
_STOP_SECONDS = 2.0


class OutputBuffer:
    """Collects both streams under one byte budget and forwards them live.

    Args:
        limit: Bytes kept of stdout and stderr together.
        on_output: Awaited with each kept piece, decoded as UTF-8.
    """

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
class Ending:
    """Why the wait ended and what the supervisor reported."""

    reason: str  # "exited" | "timed_out" | "cancelled" | "flooded"
    report: dict[str, Any] | None
    duration_ms: int


class ForkServerGoneError(OSError):
    """The fork server ended before it answered a request."""


class _ForkServer:
    """The client of this process's supervisor fork server (``child.py``).

    Thread-safe and not bound to an event loop: a request is a quick
    send and receive, made in a worker thread. The fork server is started
    on first use, and again if it died or this process forked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channel: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = 0
        atexit.register(self.close)

    def spawn(self, config: dict[str, Any], fds: list[int], path: str) -> tuple[int, int]:
        """Start a supervisor on ``config`` with ``fds``; its pid and a pidfd of it.

        Raises:
            ForkServerGoneError: The fork server died before it answered.
            OSError: It could not be started, or could not start a supervisor.
        """
        request = json.dumps(config).encode()
        with self._lock:
            channel = self._ready(path)
            try:
                socket.send_fds(channel, [request], fds)
                reply, received, _, _ = socket.recv_fds(channel, 4096, 1)
            except OSError as exc:
                self._close()
                raise ForkServerGoneError(f"the sandbox fork server is gone: {exc}") from exc
            if not reply:
                self._close()
                raise ForkServerGoneError("the sandbox fork server ended without answering")
        kind, _, detail = reply.decode(errors="replace").partition(" ")
        if kind != "ok" or len(received) != 1:
            for fd in received:
                os.close(fd)
            raise OSError(f"the sandbox fork server could not start a supervisor: {detail}")
        return int(detail), received[0]

    @property
    def pid(self) -> int | None:
        """The fork server's process id, if it was started."""
        return None if self._process is None else self._process.pid

    def close(self) -> None:
        """Stop the fork server (it also stops when this process dies)."""
        with self._lock:
            self._close()

    def _ready(self, path: str) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if self._channel is None or not alive or self._owner_pid != os.getpid():
            self._close()
            self._start(path)
        assert self._channel is not None
        return self._channel

    def _start(self, path: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", CHILD_SCRIPT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env={"PATH": path},
                cwd="/",
            )
        self._channel = ours
        self._owner_pid = os.getpid()

    def _close(self) -> None:
        if self._owner_pid != os.getpid():
            # Inherited through a fork: the fork server belongs to the parent.
            self._channel = self._process = None
            return
        if self._channel is not None:
            self._channel.close()  # the fork server exits at end of file
            self._channel = None
        if self._process is not None:
            try:
                self._process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


FORK_SERVER = _ForkServer()
# Requests are serialised by the fork server's lock anyway; one thread of
# its own keeps them off the loop's shared executor.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawn")


class _Supervisor:
    """One run's supervisor, a child of the fork server, seen from the server.

    It starts with the raw server ends of the run's pipes; :meth:`connect`
    turns them into streams, :meth:`close` releases whatever is open.
    """

    def __init__(self, pid: int, pidfd: int, pipes: list[int]) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._pipes = pipes  # stdin (write end), stdout, stderr (read ends)
        self._transports: list[asyncio.BaseTransport] = []
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout = asyncio.StreamReader(limit=_CHUNK)
        self.stderr = asyncio.StreamReader(limit=_CHUNK)

    async def connect(self) -> None:
        """Attach the pipes to the running loop."""
        loop = asyncio.get_running_loop()
        stdin, stdout, stderr = self._pipes
        for fd, reader in ((stdout, self.stdout), (stderr, self.stderr)):
            self._pipes.remove(fd)
            transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader),
                os.fdopen(fd, "rb", buffering=0),
            )
            self._transports.append(transport)
        self._pipes.remove(stdin)
        unused = asyncio.StreamReader()  # a StreamWriter's protocol wants one
        protocol = asyncio.StreamReaderProtocol(unused)
        writer, _ = await loop.connect_write_pipe(
            lambda: protocol, os.fdopen(stdin, "wb", buffering=0)
        )
        self._transports.append(writer)
        self.stdin = asyncio.StreamWriter(writer, protocol, unused, loop)

    def exited(self) -> bool:
        """Whether it has ended (a pidfd is readable once its process exited)."""
        ready, _, _ = select.select([self._pidfd], [], [], 0)
        return bool(ready)

    async def wait(self) -> None:
        """Until it has ended."""
        if self.exited():
            return
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(self._pidfd, exited)
        try:
            await ended
        finally:
            loop.remove_reader(self._pidfd)

    def kill(self) -> None:
        """SIGKILL it; the program dies with it (parent-death signal)."""
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        """Release the pidfd and the pipes."""
        for transport in self._transports:
            transport.close()
        for fd in [*self._pipes, self._pidfd]:
            os.close(fd)
        self._pipes = []


async def _start_supervisor(
    config: dict[str, Any], control: socket.socket, path: str
) -> _Supervisor:
    """Have the fork server start a supervisor wired to fresh pipes and ``control``.

    Raises:
        OSError: The fork server could not start it.
    """
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    theirs = [stdin_read, stdout_write, stderr_write]
    ours = [stdin_write, stdout_read, stderr_read]
    spawning = _SPAWNER.submit(FORK_SERVER.spawn, config, [*theirs, control.fileno()], path)
    try:
        pid, pidfd = await asyncio.wrap_future(spawning)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            # The thread may still be handing our descriptors over: wait for
            # it (a few milliseconds), so that none is closed, and its number
            # reused, meanwhile. The supervisor it started ends with
            # ``control``.
            with contextlib.suppress(Exception):
                os.close(spawning.result()[1])
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    return _Supervisor(pid, pidfd, ours)


async def supervise(
    config: dict[str, Any],
    stdin: bytes,
    *,
    wall_ms: int,
    output: OutputBuffer,
    cancel: asyncio.Event | None,
    path: str,
) -> Ending:
    """Run a supervisor on ``config``, stream the output, stop it when needed.

    Args:
        config: The supervisor's instructions (see ``child.py``).
        stdin: Written to the program's standard input, which is then closed.
        wall_ms: Wall-clock limit, from the supervisor's start.
        output: Receives both streams.
        cancel: Setting it stops the run.
        path: ``PATH`` of the fork server, whose environment holds nothing else.

    Returns:
        Why the run ended and the supervisor's report.
    """
    started = time.monotonic()
    try:
        supervisor, ours = await _launch(config, path)
    except OSError as exc:
        report = {"kind": "error", "message": f"no supervisor: {exc}"}
        return Ending("exited", report, round((time.monotonic() - started) * 1000))
    with ours:
        ours.setblocking(False)
        try:
            await supervisor.connect()
            return await _watch(supervisor, ours, stdin, wall_ms, output, cancel, started)
        finally:
            # Also on CancelledError or a failing on_output: never leave a run.
            await asyncio.shield(_stop(supervisor, ours))


async def _launch(config: dict[str, Any], path: str) -> tuple[_Supervisor, socket.socket]:
    """A started supervisor and our end of its control socket.

    A fork server found dead (killed, say) is replaced and asked once more,
    with a fresh control socket and pipes: a supervisor it may have forked
    before dying sees its control socket end, and kills its run.
    """
    for attempt in range(2):
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                return await _start_supervisor(config, theirs, path), ours
        except ForkServerGoneError:
            ours.close()
            if attempt:
                raise
        except BaseException:
            ours.close()
            raise
    raise AssertionError("unreachable")


async def _watch(
    process: _Supervisor,
    control: socket.socket,
    stdin: bytes,
    wall_ms: int,
    output: OutputBuffer,
    cancel: asyncio.Event | None,
    started: float,
) -> Ending:
    assert process.stdin is not None, "connect() first"
    report = asyncio.create_task(_read_report(control))
    feeder = asyncio.create_task(_feed(process.stdin, stdin))
    pumps = [
        asyncio.create_task(output.pump("stdout", process.stdout)),
        asyncio.create_task(output.pump("stderr", process.stderr)),
    ]
    try:
        reason = await _first_ending(report, pumps, output.flooded, cancel, wall_ms)
        if reason != "exited":
            await _send_stop(control)
        done = await _bounded(report, _STOP_SECONDS)
        duration_ms = round((time.monotonic() - started) * 1000)
        # The supervisor reaped everything, so the pipes are at EOF.
        await asyncio.wait(pumps, timeout=_STOP_SECONDS)
        for pump in pumps:
            if pump.done():
                pump.result()  # an on_output failure propagates
        return Ending(reason, done, duration_ms)
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


async def _stop(supervisor: _Supervisor, control: socket.socket) -> None:
    """Make sure the supervisor, and so the whole run, is gone."""
    try:
        if not supervisor.exited():
            await _send_stop(control)
            try:
                async with asyncio.timeout(_STOP_SECONDS):
                    await supervisor.wait()
            except TimeoutError:
                # The sandbox dies with it: PR_SET_PDEATHSIG and --die-with-parent.
                supervisor.kill()
        await supervisor.wait()
    finally:
        supervisor.close()
