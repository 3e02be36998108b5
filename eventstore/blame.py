"""Who typed each character: attribution rebuilt by replaying the log.

Snapshots carry no authorship, so blame replays every event from the first
and follows the text's change deltas (in UTF-8 bytes, as pycrdt reports
them), keeping runs of ``[seq, byte length]`` aligned with the text. Spans
are reported in UTF-16 code units, the positions a JavaScript client uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Text, TextEvent

from eventstore.crdt import TEXT_NAME, apply_update, new_doc
from eventstore.eventlog import EventLog


@dataclass(frozen=True, slots=True)
class Span:
    """Characters ``[start, end)`` (UTF-16 units) inserted by event ``seq``."""

    start: int
    end: int
    seq: int
    author_id: str | None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Blame:
    """The text at ``seq`` and who inserted each part of it."""

    seq: int
    text: str
    spans: list[Span]


class _Runs:
    """Runs of ``[seq, bytes]`` covering the text, edited like the text."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.seq = 0

    def apply(self, event: TextEvent) -> None:
        position = 0
        delta: list[dict[str, Any]] = event.delta  # type: ignore[attr-defined]
        for op in delta:
            if "retain" in op:
                position += int(op["retain"])
            elif "insert" in op:
                inserted = op["insert"]
                size = len(inserted.encode("utf-8")) if isinstance(inserted, str) else 1
                self._insert(position, size)
                position += size
            elif "delete" in op:
                self._delete(position, int(op["delete"]))

    def _split(self, position: int) -> int:
        """Index of the run starting at byte ``position`` (splitting one if needed)."""
        offset = 0
        for index, (seq, size) in enumerate(self.runs):
            if offset == position:
                return index
            if offset + size > position:
                head = position - offset
                self.runs[index : index + 1] = [[seq, head], [seq, size - head]]
                return index + 1
            offset += size
        return len(self.runs)

    def _insert(self, position: int, size: int) -> None:
        self.runs.insert(self._split(position), [self.seq, size])

    def _delete(self, position: int, size: int) -> None:
        start = self._split(position)
        end = self._split(position + size)
        del self.runs[start:end]


async def blame(log: EventLog, doc_id: str) -> Blame:
    """Attribute every character of the document's current text.

    Raises:
        UnknownLogError: the document has no log.
    """
    doc = new_doc()
    text = doc.get(TEXT_NAME, type=Text)
    runs = _Runs()
    subscription = text.observe(runs.apply)
    authors: dict[int, tuple[str | None, str | None]] = {}
    seq = 0
    async for event in log.iterate(doc_id):
        runs.seq = seq = event.seq
        authors[seq] = (event.author_id, event.source)
        apply_update(doc, event.update)
    text.unobserve(subscription)
    content = str(text)
    return Blame(seq, content, _spans(content, runs.runs, authors))


def _spans(
    content: str, runs: list[list[int]], authors: dict[int, tuple[str | None, str | None]]
) -> list[Span]:
    """Turn byte runs into UTF-16 spans, merging neighbours from the same event."""
    spans: list[Span] = []
    utf16 = 0
    chars = iter(content)
    for seq, size in runs:
        start = utf16
        while size > 0:
            char = next(chars)
            size -= len(char.encode("utf-8"))
            utf16 += 2 if ord(char) > 0xFFFF else 1
        if spans and spans[-1].seq == seq and spans[-1].end == start:
            last = spans[-1]
            spans[-1] = Span(last.start, utf16, seq, last.author_id, last.source)
        else:
            author, source = authors.get(seq, (None, None))
            spans.append(Span(start, utf16, seq, author, source))
    return spans
