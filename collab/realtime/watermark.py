"""The seq watermark of a room: how far its in-memory document follows the log."""

from __future__ import annotations


class SeqWatermark:
    """Which of a document's events are in the room's ``Doc``.

    Invariant: every event with ``seq <= self.seq`` is applied. Events this
    node committed itself can land beyond the watermark when another node's
    event sits in between and has not arrived yet; they are remembered as
    *ahead* and the watermark jumps over them once the gap is filled. Events
    are applied strictly in seq order otherwise, because yrs integrates an
    update whose predecessor is missing differently from Yjs (it drops or
    reorders content where Yjs would keep it pending).
    """

    __slots__ = ("_ahead", "seq")

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self._ahead: set[int] = set()

    def mark(self, seq: int) -> None:
        """Record that event ``seq`` is in the document."""
        if seq == self.seq + 1:
            self.seq = seq
            while self.seq + 1 in self._ahead:
                self._ahead.discard(self.seq + 1)
                self.seq += 1
        elif seq > self.seq:
            self._ahead.add(seq)

    def contains(self, seq: int) -> bool:
        """True when event ``seq`` is already in the document."""
        return seq <= self.seq or seq in self._ahead

    def is_next(self, seq: int) -> bool:
        """True when ``seq`` directly follows the watermark (safe to apply now)."""
        return seq == self.seq + 1

    @property
    def has_gap(self) -> bool:
        """True while events of ours wait beyond a missing one."""
        return bool(self._ahead)
