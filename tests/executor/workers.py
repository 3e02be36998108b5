"""Start real ``collab worker`` processes for tests and benchmarks.

Each worker runs ``python -m collab worker`` with the interpreter running the
tests, in its own session (so it and its sandboxes can be killed together),
with the environment of :func:`tests.support.nodes.node_environment` plus
``env``; its output goes to a log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.nodes import node_environment

_POLL_SECONDS = 0.05


class WorkerProcess:
    """One ``collab worker`` subprocess."""

    def __init__(self, env: Mapping[str, str], *, node_id: str, log_dir: Path) -> None:
        self.node_id = node_id
        self.env = node_environment({**env, "COLLAB_NODE_ID": node_id})
        self.log_path = log_dir / f"worker-{node_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (it needs no time before jobs are queued)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collab", "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The worker's process id."""
        if self.process is None:
            raise RuntimeError("the worker has not been started")
        return self.process.pid

    def log_text(self) -> str:
        """Everything the worker wrote so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def wait_log(self, needle: str, *, within: float = 20.0) -> None:
        """Wait until the log contains ``needle``."""
        async with asyncio.timeout(within):
            while needle not in self.log_text():  # noqa: ASYNC110 (polling a file)
                await asyncio.sleep(_POLL_SECONDS)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 15.0) -> int:
        """Send ``sig`` and wait (bounded) for the exit code; SIGKILL after ``grace``."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
        try:
            async with asyncio.timeout(grace):
                while (code := process.poll()) is None:  # noqa: ASYNC110 (Popen is not awaitable)
                    await asyncio.sleep(_POLL_SECONDS)
                return code
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's whole session and reap the worker."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@asynccontextmanager
async def running_workers(
    env: Mapping[str, str], count: int, *, log_dir: Path, prefix: str = "w"
) -> AsyncIterator[list[WorkerProcess]]:
    """``count`` workers named ``w1``, ``w2``…; all killed when the context ends."""
    workers = [
        WorkerProcess(env, node_id=f"{prefix}{n}", log_dir=log_dir) for n in range(1, count + 1)
    ]
    try:
        for worker in workers:
            worker.start()
        yield workers
    finally:
        for worker in workers:
            worker.kill()
