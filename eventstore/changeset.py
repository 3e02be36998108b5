"""What changed between two versions, run by run, and which event did it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eventstore.changes import CharHistory

RunOp = Literal["keep", "insert", "delete"]


@dataclass(frozen=True, slots=True)
class Run:
    """Text kept, inserted or deleted between two seqs.

    ``seq`` is the event that inserted (``insert``) or deleted (``delete``)
    the text; None for ``keep``.
    """

    op: RunOp
    text: str
    seq: int | None


def changeset(history: CharHistory, from_seq: int, to_seq: int) -> list[Run]:
    """The text at ``to_seq`` with what changed since ``from_seq``.

    Concatenating the keep and insert runs gives the text at ``to_seq``; the
    keep and delete runs give the text at ``from_seq``. Neighbouring runs of
    the same op and event are merged. ``from_seq`` may exceed ``to_seq``
    (then the runs describe going back).

    Raises:
        ValueError: ``history`` does not reach one of the seqs.
    """
    if max(from_seq, to_seq) > history.seq:
        raise ValueError(f"history stops at seq {history.seq}")
    runs: list[Run] = []
    for piece in history.pieces:
        before, after = piece.alive_at(from_seq), piece.alive_at(to_seq)
        if before and after:
            run = Run("keep", piece.text, None)
        elif after:
            # Forward it appeared when inserted; going back, when its deletion is undone.
            cause = piece.inserted if piece.inserted > from_seq else piece.deleted
            run = Run("insert", piece.text, cause)
        elif before:
            cause = piece.deleted if piece.inserted <= to_seq else piece.inserted
            run = Run("delete", piece.text, cause)
        else:
            continue
        if runs and runs[-1].op == run.op and runs[-1].seq == run.seq:
            runs[-1] = Run(run.op, runs[-1].text + run.text, run.seq)
        else:
            runs.append(run)
    return runs
