"""Undoing chosen events: their insertions removed, their deletions restored.

Every other edit, earlier or later, stays. The plan is made against the text
at one seq and applied to a document rebuilt at that seq; the resulting Yjs
update deletes items by id and anchors re-inserted text to its neighbours'
ids, so it merges with anything committed after that seq.
"""

from __future__ import annotations

from collections.abc import Collection

from eventstore.changes import CharHistory
from eventstore.splices import Splice


def rollback_plan(history: CharHistory, seqs: Collection[int]) -> list[Splice]:
    """The splices, on the text at ``history.seq``, that undo the events ``seqs``.

    Apply them with :func:`eventstore.splices.apply_from_end`.

    Text those events inserted and nobody deleted since is deleted; text they
    deleted is put back where it was, unless they had inserted it themselves.
    """
    splices: list[Splice] = []
    offset, at = 0, history.seq
    for piece in history.pieces:
        if piece.alive_at(at):
            if piece.inserted in seqs:
                splices.append(Splice(offset, piece.size, ""))
            offset += piece.size
        elif piece.deleted in seqs and piece.inserted not in seqs and piece.inserted <= at:
            splices.append(Splice(offset, 0, piece.text))
    return splices
