"""The event sequence of ``GET /api/jobs/{id}/events``, bus and table merged.

The reader subscribes first, then reads the row, so nothing published in
between is lost; output events carry offsets, so what both paths deliver is
sent once. Whenever the bus is quiet for ``poll_seconds``, or a piece is
missing, the row fills the gap; the row also ends the stream if the final
events were dropped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

from executor.bus import JobBus, JobEvent
from executor.models import FINAL_STATUSES, Job
from executor.output import STREAMS
from executor.store import JobStore

SseEvent = tuple[str, dict[str, Any]]


class _Sent:
    """What this stream already told its client."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.status = ""
        self.length = dict.fromkeys(STREAMS, 0)

    def status_event(self, status: str) -> Iterator[SseEvent]:
        if status != self.status:
            self.status = status
            yield "status", {"id": self.job_id, "status": status}

    def output_event(self, stream: str, text: str, offset: int) -> Iterator[SseEvent]:
        sent = self.length[stream]
        if offset + len(text) <= sent:
            return
        # offset > sent would be a gap that even the table could not fill
        # yet; send what we have rather than hold the stream back.
        new = text[max(sent - offset, 0) :]
        self.length[stream] = max(sent, offset) + len(new)
        yield stream, {"text": new}

    def catch_up(self, job: Job) -> Iterator[SseEvent]:
        """Whatever the row holds that the client has not seen."""
        if job.finished:
            # Output first, so the final status is the last word before done.
            yield from self._output_of(job)
            yield from self.status_event(job.status)
        else:
            yield from self.status_event(job.status)
            yield from self._output_of(job)

    def _output_of(self, job: Job) -> Iterator[SseEvent]:
        # In the order it was printed; then whole streams, for anything the
        # chunks lack (a run recorded before chunks existed).
        for chunk in job.chunks():
            yield from self.output_event(chunk["stream"], chunk["text"], chunk["offset"])
        for stream, text in (("stdout", job.stdout), ("stderr", job.stderr)):
            yield from self.output_event(stream, text, 0)

    def is_gap(self, event: JobEvent) -> bool:
        return event.kind in STREAMS and event.offset > self.length[event.kind]


async def job_events(
    store: JobStore, bus: JobBus, job: Job, *, poll_seconds: float = 2.0
) -> AsyncGenerator[SseEvent, None]:
    """``status``/``stdout``/``stderr`` events of ``job`` as it runs, then ``done``.

    A finished job yields its final status and output, then ``done``. An
    event named ``""`` carries nothing: it marks ``poll_seconds`` of quiet.
    """
    sent = _Sent(job.id)
    async with bus.subscribe(job.id) as subscription:
        current: Job | None = await store.get(job.id)
        while current is not None:
            for item in sent.catch_up(current):
                yield item
            if current.finished:
                yield "done", current.to_json()
                return
            event = await subscription.get(poll_seconds)
            while event is not None and not _needs_row(event, sent):
                for item in _apply(event, sent):
                    yield item
                event = await subscription.get(poll_seconds)
            if event is None:
                yield "", {}  # quiet for a while: the caller may send a keep-alive
            current = await store.get(job.id)
            if current is not None and not current.finished and event is not None:
                # A gap: the row fills what it can, then the piece itself.
                for item in sent.catch_up(current):
                    yield item
                for item in _apply(event, sent):
                    yield item


def _needs_row(event: JobEvent, sent: _Sent) -> bool:
    """The end of the job, or a gap: both are settled from the table."""
    if event.kind == "done" or (event.kind == "status" and event.status in FINAL_STATUSES):
        return True
    return sent.is_gap(event)


def _apply(event: JobEvent, sent: _Sent) -> Iterator[SseEvent]:
    if event.kind == "status":
        yield from sent.status_event(event.status)
    elif event.kind in STREAMS:
        yield from sent.output_event(event.kind, event.text, event.offset)
