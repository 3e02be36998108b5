"""Live output: batched, with offsets, and closed without cancelling a publish."""

from __future__ import annotations

import asyncio
import contextlib

from executor.bus import InMemoryJobBus, JobEvent
from executor.output import LiveOutput


class _SlowBus(InMemoryJobBus):
    """A bus whose publish, like redis-py 8's, may swallow a cancellation."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[JobEvent] = []

    async def publish(self, job_id: str, event: JobEvent) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)
        self.sent.append(event)


async def test_close_waits_for_a_publish_in_flight_and_sends_the_rest() -> None:
    bus = _SlowBus()
    output = LiveOutput(bus, "job")
    output.start()
    await output.add("stdout", "a")
    await asyncio.sleep(0.01)  # the publisher is inside publish() now
    await output.add("stdout", "b")
    await output.add("stderr", "oops")
    async with asyncio.timeout(2):
        await output.close()
    # Each stream in order with its offsets; the two streams may interleave.
    assert [e for e in bus.sent if e.kind == "stdout"] == [
        JobEvent("stdout", text="a", offset=0),
        JobEvent("stdout", text="b", offset=1),
    ]
    assert [e for e in bus.sent if e.kind == "stderr"] == [JobEvent("stderr", text="oops")]
    assert (output.text("stdout"), output.text("stderr")) == ("ab", "oops")


async def test_pieces_are_batched_and_saved_once() -> None:
    bus = _SlowBus()
    output = LiveOutput(bus, "job")
    for piece in ("1\n", "2\n", "3\n"):
        await output.add("stdout", piece)
    assert output.unsaved() == ("1\n2\n3\n", "")
    assert output.unsaved() is None
    output.start()
    async with asyncio.timeout(2):
        await output.close()
    assert bus.sent == [JobEvent("stdout", text="1\n2\n3\n", offset=0)]
