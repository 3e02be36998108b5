"""Character-level history: which event inserted and which deleted each character.

Replaying the log while following the text's change deltas gives a list of
pieces in document order. Every piece is a run of characters inserted by one
event and (perhaps) deleted by a later one; deleted pieces stay in place as
tombstones. From that list the text at *any* seq is the pieces alive then,
so one replay answers "what changed between A and B, and who did it" and
"what did these events insert and delete".

pycrdt reports delta positions in UTF-8 bytes of the visible text; callers
get UTF-16 counts (what a Yjs client counts) from :func:`utf16_len`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text, TextEvent

from eventstore.crdt import TEXT_NAME, apply_update, new_doc
from eventstore.eventlog import EventLog
from eventstore.events import StoredEvent


def utf16_len(text: str) -> int:
    """How many UTF-16 code units ``text`` takes (astral characters count 2)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _char_index(text: str, size: int) -> int:
    """The number of characters of ``text`` in its first ``size`` UTF-8 bytes."""
    if text.isascii():
        return size
    count = 0
    for index, char in enumerate(text):
        if count >= size:
            return index
        count += len(char.encode("utf-8"))
    return len(text)


@dataclass(slots=True)
class Piece:
    """Characters inserted by event ``inserted``; ``deleted`` is the seq that removed them."""

    text: str
    size: int  # UTF-8 bytes
    inserted: int
    deleted: int | None = None

    def alive_at(self, seq: int) -> bool:
        """Visible in the text right after event ``seq``."""
        return self.inserted <= seq and (self.deleted is None or self.deleted > seq)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """Who made an event, when, with what, and how much text it changed (UTF-16)."""

    seq: int
    kind: str
    author_id: str | None
    source: str | None
    created_at: float
    inserted: int = 0
    deleted: int = 0


@dataclass(slots=True)
class _Counts:
    inserted: int = 0
    deleted: int = 0


@dataclass(slots=True)
class CharHistory:
    """The pieces of a document through ``seq`` and the events that made them."""

    pieces: list[Piece] = field(default_factory=list)
    events: dict[int, EventInfo] = field(default_factory=dict)
    seq: int = 0
    doc: Doc[Any] | None = None
    _counts: _Counts = field(default_factory=_Counts)

    def observe(self, event: TextEvent) -> None:
        """Follow one transaction's delta (subscribe this to the text)."""
        position = 0
        delta: list[dict[str, Any]] = event.delta  # type: ignore[attr-defined]
        for op in delta:
            if "retain" in op:
                position += int(op["retain"])
            elif "insert" in op:
                inserted = op["insert"]
                text = inserted if isinstance(inserted, str) else "\ufffc"
                size = len(text.encode("utf-8"))
                self.pieces.insert(self._split(position), Piece(text, size, self.seq))
                self._counts.inserted += utf16_len(text)
                position += size
            elif "delete" in op:
                self._delete(position, int(op["delete"]))

    def _split(self, position: int) -> int:
        """Index before which exactly ``position`` visible bytes lie (splitting a piece)."""
        offset = 0
        for index, piece in enumerate(self.pieces):
            # Before any tombstones here: Yjs inserts right after the last visible
            # character, ahead of deleted ones, and restored text must keep that order.
            if offset == position:
                return index
            if piece.deleted is not None:
                continue
            if offset + piece.size > position:
                chars = _char_index(piece.text, position - offset)
                head, tail = piece.text[:chars], piece.text[chars:]
                head_size = len(head.encode("utf-8"))
                self.pieces[index : index + 1] = [
                    Piece(head, head_size, piece.inserted),
                    Piece(tail, piece.size - head_size, piece.inserted),
                ]
                return index + 1
            offset += piece.size
        return len(self.pieces)

    def _delete(self, position: int, size: int) -> None:
        start = self._split(position)
        end = self._split(position + size)
        for piece in self.pieces[start:end]:
            if piece.deleted is None:
                piece.deleted = self.seq
                self._counts.deleted += utf16_len(piece.text)

    def record(self, event: StoredEvent) -> None:
        """Note ``event``'s facts and the counts its delta produced."""
        counts, self._counts = self._counts, _Counts()
        self.events[event.seq] = EventInfo(
            event.seq,
            event.kind,
            event.author_id,
            event.source,
            event.created_at,
            counts.inserted,
            counts.deleted,
        )

    def text_at(self, seq: int) -> str:
        """The text right after event ``seq``."""
        return "".join(piece.text for piece in self.pieces if piece.alive_at(seq))

    def alive(self, seq: int) -> Iterator[Piece]:
        """The pieces visible right after event ``seq``, in order."""
        return (piece for piece in self.pieces if piece.alive_at(seq))


async def char_history(log: EventLog, doc_id: str, *, through: int | None = None) -> CharHistory:
    """Replay the log from its first event (through ``through``) tracking every character.

    Snapshots carry no authorship, so this always starts from the beginning.
    The replayed document is kept as ``doc`` (the state at ``seq``).

    Raises:
        UnknownLogError: the document has no log.
        UpdateRejectedError: a stored update does not decode.
    """
    doc = new_doc()
    text = doc.get(TEXT_NAME, type=Text)
    history = CharHistory(doc=doc)
    subscription = text.observe(history.observe)
    try:
        async for event in log.iterate(doc_id, through=through):
            history.seq = event.seq
            apply_update(doc, event.update)
            history.record(event)
    finally:
        text.unobserve(subscription)
    return history
