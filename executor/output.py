"""A running job's output: kept for the database, published live in batches."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from executor.bus import JobBus, JobEvent

STREAMS = ("stdout", "stderr")
# A program that prints line by line hands us one tiny piece per line;
# publishing at most this often keeps Redis and SSE traffic proportional to
# time, not to lines.
_BATCH_SECONDS = 0.02


class LiveOutput:
    """Collects both streams and publishes what is new, with offsets, in arrival order.

    Offsets count characters from the start of each stream, so a reader can
    drop a piece it has already seen and notice one it missed. Pieces are
    published in the order they arrived across both streams, and kept as one
    sequence of chunks (:meth:`chunks_json`), so a traceback printed between
    two lines of output stays between them.
    """

    def __init__(
        self, bus: JobBus, job_id: str, rename: Callable[[str], str] = lambda text: text
    ) -> None:
        self._bus = bus
        self._rename = rename
        self._job_id = job_id
        self._pieces: dict[str, list[str]] = {name: [] for name in STREAMS}
        self._pending: list[tuple[str, str]] = []
        self._chunks: list[dict[str, Any]] = []
        self._length = dict.fromkeys(STREAMS, 0)
        self._published = dict.fromkeys(STREAMS, 0)
        self._saved = dict.fromkeys(STREAMS, 0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def add(self, stream: str, text: str) -> None:
        """The sandbox's ``on_output`` callback; never blocks on the network."""
        text = self._rename(text)
        self._pieces[stream].append(text)
        self._pending.append((stream, text))
        last = self._chunks[-1] if self._chunks else None
        if last is not None and last["stream"] == stream:
            last["text"] += text
        else:
            self._chunks.append({"stream": stream, "offset": self._length[stream], "text": text})
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

    def chunks_json(self) -> str:
        """Both streams as one ordered sequence: ``[{stream, offset, text}, …]`` in JSON."""
        return json.dumps(self._chunks)

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
        pending, self._pending = self._pending, []
        # Consecutive pieces of one stream go out as one event; the order
        # between the streams is kept.
        for stream, run in itertools.groupby(pending, key=lambda piece: piece[0]):
            new = "".join(text for _, text in run)
            start = self._published[stream]
            await self._bus.publish(self._job_id, JobEvent(stream, text=new, offset=start))
            self._published[stream] = start + len(new)
