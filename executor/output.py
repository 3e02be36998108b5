"""A running job's output: kept for the database, published live in batches."""

from __future__ import annotations

import asyncio

from executor.bus import JobBus, JobEvent

STREAMS = ("stdout", "stderr")
# A program that prints line by line hands us one tiny piece per line;
# publishing at most this often keeps Redis and SSE traffic proportional to
# time, not to lines.
_BATCH_SECONDS = 0.02


class LiveOutput:
    """Collects both streams and publishes what is new, with offsets.

    Offsets count characters from the start of each stream, so a reader can
    drop a piece it has already seen and notice one it missed.
    """

    def __init__(self, bus: JobBus, job_id: str) -> None:
        self._bus = bus
        self._job_id = job_id
        self._pieces: dict[str, list[str]] = {name: [] for name in STREAMS}
        self._pending: dict[str, list[str]] = {name: [] for name in STREAMS}
        self._length = dict.fromkeys(STREAMS, 0)
        self._published = dict.fromkeys(STREAMS, 0)
        self._saved = dict.fromkeys(STREAMS, 0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def add(self, stream: str, text: str) -> None:
        """The sandbox's ``on_output`` callback; never blocks on the network."""
        self._pieces[stream].append(text)
        self._pending[stream].append(text)
        self._length[stream] += len(text)
        self._wake.set()

    def start(self) -> None:
        """Start publishing in the background."""
        self._task = asyncio.create_task(self._publish_forever())

    async def close(self) -> None:
        """Stop the background task and publish whatever is left."""
        # Not task.cancel(): redis-py 8 can swallow a CancelledError raised
        # inside a command, which would leave the task running forever.
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._publish_new()

    def unsaved(self) -> tuple[str, str] | None:
        """Both streams so far if they grew since the last call, else None."""
        if self._length == self._saved:
            return None
        self._saved = dict(self._length)
        stdout, stderr = (self.text(name) for name in STREAMS)
        return stdout, stderr

    def text(self, stream: str) -> str:
        """Everything received on ``stream``."""
        pieces = self._pieces[stream]
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0] if pieces else ""

    async def _publish_forever(self) -> None:
        while True:
            await self._wake.wait()
            if self._closing:
                return
            self._wake.clear()
            await self._publish_new()
            await asyncio.sleep(_BATCH_SECONDS)

    async def _publish_new(self) -> None:
        for stream in STREAMS:
            pending, self._pending[stream] = self._pending[stream], []
            if not pending:
                continue
            new = "".join(pending)
            start = self._published[stream]
            await self._bus.publish(self._job_id, JobEvent(stream, text=new, offset=start))
            self._published[stream] = start + len(new)
