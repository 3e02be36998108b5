"""Start real ``collab serve`` processes for tests and benchmarks.

Example::

    async with running_node({"COLLAB_DATABASE_URL": url}, node_id="a") as node:
        async with aiohttp.ClientSession() as http:
            await http.get(f"{node.url}/readyz")
        assert await node.stop() == 0

Each node runs ``python -m collab serve`` with the interpreter running the tests,
in a private working directory (so ``./data`` and ``.env`` are its own), with an
environment cleaned of the parent's ``COLLAB_*``, ``DATABASE_URL`` and
``REDIS_URL``, then ``env`` applied on top. Its stdout and stderr go to a log file
whose tail is part of every start-up error. On leaving the context the process
(and anything it spawned) is killed, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
_DROPPED_PREFIXES = ("COLLAB_",)
_DROPPED_NAMES = frozenset({"DATABASE_URL", "REDIS_URL"})
_LOG_TAIL_LINES = 40
_POLL_SECONDS = 0.05


class NodeStartError(RuntimeError):
    """The node exited, or did not answer ``/healthz``, during start-up."""


def node_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a node: the parent's minus collab settings, plus ``env``.

    Args:
        env: variables to set for the node (``COLLAB_DATABASE_URL`` and the like).

    Returns:
        A complete environment for ``subprocess``.
    """
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_DROPPED_PREFIXES) and name not in _DROPPED_NAMES
    }
    # The code under test is this checkout's, whichever way the package was installed.
    paths = [str(REPO_ROOT), clean.get("PYTHONPATH", "")]
    clean["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    clean["PYTHONUNBUFFERED"] = "1"
    clean.update(env)
    return clean


class RunningNode:
    """One ``collab serve`` subprocess; created by :func:`running_node`."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int,
        node_id: str | None,
        workdir: Path,
        startup_timeout: float,
    ) -> None:
        self.env = node_environment(env)
        self.port = port
        self.node_id = node_id
        self.workdir = workdir
        self.log_path = workdir / "node.log"
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws``: the base URL a y-websocket provider takes."""
        return f"ws://{HOST}:{self.port}/ws"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The current process (a new one after :meth:`restart`)."""
        if self._process is None:
            raise RuntimeError("the node has not been started")
        return self._process

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line the node runs."""
        args = [sys.executable, "-m", "collab", "serve", "--host", HOST, "--port", str(self.port)]
        if self.node_id is not None:
            args += ["--node-id", self.node_id]
        return args

    async def start(self) -> None:
        """Start the process and wait until ``/healthz`` answers 200.

        Raises:
            NodeStartError: the process exited or did not answer in time; the
                message holds the tail of its log.
        """
        if self.running:
            raise RuntimeError("the node is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(self.command())}\n".encode())
            log.flush()
            # Popen only forks and execs; it does not wait for the child.
            self._process = subprocess.Popen(  # noqa: ASYNC220
                self.command(),
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C aimed at the tests does not reach
                # it, and kill() can take down anything it spawned.
                start_new_session=True,
            )
        try:
            await self._wait_healthy()
        except BaseException:
            self.kill()
            raise

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise NodeStartError(
                        f"collab serve exited with {code} during start-up\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise NodeStartError(
                        f"collab serve did not answer /healthz within {self.startup_timeout}s"
                        f"\n{self.log_tail()}"
                    )
                await asyncio.sleep(_POLL_SECONDS)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 15.0) -> int:
        """Send ``sig`` and wait for the process to exit.

        Args:
            sig: the signal; SIGTERM asks for a graceful shutdown.
            grace: seconds to wait before killing it.

        Returns:
            The exit code (negative: killed by that signal).

        Raises:
            TimeoutError: it did not exit within ``grace`` seconds (it is killed then).
        """
        process = self.process
        if process.poll() is None:
            process.send_signal(sig)
        try:
            async with asyncio.timeout(grace):
                return await self.wait()
        except TimeoutError:
            self.kill()
            raise TimeoutError(
                f"collab serve did not exit within {grace}s of {sig.name}\n{self.log_tail()}"
            ) from None

    async def wait(self) -> int:
        """Wait for the process to exit, without signalling it; bound it with a timeout.

        Returns:
            The exit code (negative: killed by that signal).
        """
        # Polling: Popen offers no awaitable exit, and a thread blocked in
        # wait() would outlive a cancelled caller.
        while (code := self.process.poll()) is None:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_SECONDS)
        return code

    def kill(self) -> None:
        """SIGKILL the node and everything in its process group, and reap it."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()

    async def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the node (if running) and start it again on the same port."""
        if self.running:
            await self.stop(sig)
        await self.start()

    def log_text(self) -> str:
        """Everything the node has written to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the node's output."""
        tail = self.log_text().splitlines()[-lines:]
        return "\n".join(f"  | {line}" for line in tail) or "  | (no output)"

    def cleanup(self) -> None:
        """Kill the process and also any process left in its group."""
        self.kill()
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


@asynccontextmanager
async def running_node(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    node_id: str | None = None,
    workdir: Path | None = None,
    startup_timeout: float = 30.0,
) -> AsyncIterator[RunningNode]:
    """Run ``collab serve`` for the duration of the context.

    Args:
        env: settings for the node, e.g. ``{"COLLAB_DATABASE_URL": ...}``. The
            parent's ``COLLAB_*``, ``DATABASE_URL`` and ``REDIS_URL`` are not inherited.
        port: the port to listen on; a free one when omitted.
        node_id: ``--node-id``; the server's default (hostname-pid) when omitted.
        workdir: the working directory (``./data`` lives there); a temporary
            directory, removed afterwards, when omitted.
        startup_timeout: how long to wait for ``/healthz``.

    Yields:
        The running node, already answering ``/healthz``.

    Raises:
        NodeStartError: the node did not start; the message holds its log tail.
    """
    own_dir = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="collab-node-")) if workdir is None else workdir
    directory.mkdir(parents=True, exist_ok=True)
    node = RunningNode(
        env,
        port=port if port is not None else free_port(),
        node_id=node_id,
        workdir=directory,
        startup_timeout=startup_timeout,
    )
    try:
        await node.start()
        yield node
    finally:
        node.cleanup()
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
