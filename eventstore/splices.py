"""Text splices: UTF-16 positions (what clients count) turned into pycrdt's UTF-8 bytes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text

from eventstore.crdt import TEXT_NAME


class SpliceError(ValueError):
    """A splice does not fit the text (out of range, or inside a surrogate pair)."""


@dataclass(frozen=True, slots=True)
class Splice:
    """At UTF-8 byte ``offset``: delete ``delete`` bytes, then insert ``insert``."""

    offset: int
    delete: int
    insert: str


@dataclass(frozen=True, slots=True)
class TextEdit:
    """At UTF-16 ``index``: delete ``delete`` units, then insert ``insert``."""

    index: int
    delete: int
    insert: str


def _char_position(text: str, units: int, what: str) -> int:
    """The character index ``units`` UTF-16 units into ``text``."""
    if text.isascii():
        if units > len(text):
            raise SpliceError(f"{what} {units} is past the end of the text ({len(text)})")
        return units
    count = 0
    for index, char in enumerate(text):
        if count == units:
            return index
        count += 2 if ord(char) > 0xFFFF else 1
        if count > units:
            raise SpliceError(f"{what} {units} falls inside a surrogate pair")
    if count == units:
        return len(text)
    raise SpliceError(f"{what} {units} is past the end of the text ({count})")


def to_splices(text: str, edits: Iterable[TextEdit]) -> list[Splice]:
    """Byte splices for ``edits``, each against the text the previous ones left.

    Raises:
        SpliceError: an edit does not fit the text it applies to.
    """
    splices = []
    for number, edit in enumerate(edits):
        start = _char_position(text, edit.index, f"edits[{number}].index")
        end_units = edit.index + edit.delete
        end = _char_position(text, end_units, f"edits[{number}] end")
        offset = len(text[:start].encode("utf-8"))
        size = len(text[start:end].encode("utf-8"))
        splices.append(Splice(offset, size, edit.insert))
        text = text[:start] + edit.insert + text[end:]
    return splices


def apply_in_order(doc: Doc[Any], splices: Iterable[Splice]) -> None:
    """Apply splices one after the other (each against the previous result)."""
    text = doc.get(TEXT_NAME, type=Text)
    with doc.transaction():
        for splice in splices:
            _apply(text, splice)


def apply_from_end(doc: Doc[Any], splices: list[Splice]) -> None:
    """Apply splices all made against the current text, last first so offsets hold."""
    text = doc.get(TEXT_NAME, type=Text)
    with doc.transaction():
        for splice in reversed(splices):
            _apply(text, splice)


def _apply(text: Text, splice: Splice) -> None:
    if splice.delete:
        del text[splice.offset : splice.offset + splice.delete]
    if splice.insert:
        text.insert(splice.offset, splice.insert)
