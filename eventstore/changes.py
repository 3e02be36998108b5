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
from eventstore.pieces import Piece, PieceList

__all__ = ["CharHistory", "EventInfo", "Piece", "char_history", "utf16_len"]


def utf16_len(text: str) -> int:
    """How many UTF-16 code units ``text`` takes (astral characters count 2)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


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

    sequence: PieceList = field(default_factory=PieceList)
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
                self.sequence.insert(position, Piece(text, size, self.seq))
                self._counts.inserted += utf16_len(text)
                position += size
            elif "delete" in op:
                self._delete(position, int(op["delete"]))

    def _delete(self, position: int, size: int) -> None:
        for piece in self.sequence.delete(position, size, self.seq):
            self._counts.deleted += utf16_len(piece.text)

    @property
    def pieces(self) -> list[Piece]:
        """Every piece in document order, tombstones included."""
        return list(self.sequence)

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

    async def extend(self, log: EventLog, doc_id: str, *, through: int | None = None) -> None:
        """Replay the events after ``seq`` (through ``through``) into this history.

        Raises:
            UnknownLogError: the document has no log.
            UpdateRejectedError: a stored update does not decode (the history
                is then unusable).
        """
        if self.doc is None:
            self.doc = new_doc()
        doc = self.doc
        text = doc.get(TEXT_NAME, type=Text)
        subscription = text.observe(self.observe)
        try:
            async for event in log.iterate(doc_id, after=self.seq, through=through):
                self.seq = event.seq
                apply_update(doc, event.update)
                self.record(event)
        finally:
            text.unobserve(subscription)

    def text_at(self, seq: int) -> str:
        """The text right after event ``seq``."""
        return "".join(piece.text for piece in self.sequence if piece.alive_at(seq))

    def alive(self, seq: int) -> Iterator[Piece]:
        """The pieces visible right after event ``seq``, in order."""
        return (piece for piece in self.sequence if piece.alive_at(seq))


async def char_history(log: EventLog, doc_id: str, *, through: int | None = None) -> CharHistory:
    """Replay the log from its first event (through ``through``) tracking every character.

    Snapshots carry no authorship, so this always starts from the beginning.
    The replayed document is kept as ``doc`` (the state at ``seq``).

    Raises:
        UnknownLogError: the document has no log.
        UpdateRejectedError: a stored update does not decode.
    """
    history = CharHistory(doc=new_doc())
    await history.extend(log, doc_id, through=through)
    return history
