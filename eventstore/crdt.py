"""Safe use of pycrdt documents.

yrs can panic inside ``apply_update``, and pyo3 raises its ``PanicException``
as a ``BaseException``; :func:`apply_update` turns that into
:class:`UpdateRejectedError` so callers can drop the update (and treat the
document as poisoned) with an ordinary ``except``.
"""

from __future__ import annotations

import asyncio
import difflib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from pycrdt import Doc, Text

TEXT_NAME = "content"
# An update that changes nothing (no structs, empty delete set).
EMPTY_UPDATE = b"\x00\x00"
_T = TypeVar("_T")


class UpdateRejectedError(Exception):
    """yrs could not decode or integrate an update.

    ``panicked`` is True when yrs panicked: it may have changed the document
    part-way, which must then be treated as poisoned. A plain decode error
    happens before integration and leaves the document untouched.
    """

    def __init__(self, message: str, *, panicked: bool) -> None:
        super().__init__(message)
        self.panicked = panicked


def new_doc(*, client_id: int | None = None) -> Doc[Any]:
    """A document with a 32-bit client id, as Yjs uses (updates stay small)."""
    return Doc(client_id=client_id if client_id is not None else secrets.randbits(32))


def guarded(action: Callable[[], _T]) -> _T:
    """Run a pycrdt call; any failure, panics included, is :class:`UpdateRejectedError`.

    Cancellation and interpreter exits pass through untouched.
    """
    try:
        return action()
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise UpdateRejectedError(f"{type(exc).__name__}: {exc}", panicked=False) from None
    except BaseException as exc:  # pyo3 PanicException derives from BaseException
        raise UpdateRejectedError(f"{type(exc).__name__}: {exc}", panicked=True) from None


def apply_update(doc: Doc[Any], update: bytes) -> None:
    """Apply ``update``, raising :class:`UpdateRejectedError` on any failure."""
    guarded(lambda: doc.apply_update(update))


def text_of(doc: Doc[Any]) -> str:
    """The document's text (the ``Y.Text`` named ``content``)."""
    return str(doc.get(TEXT_NAME, type=Text))


def encode_state(doc: Doc[Any]) -> bytes:
    """The whole state as one update (what ``Y.applyUpdate`` takes)."""
    return doc.get_update()


def replace_text(doc: Doc[Any], target: str) -> None:
    """Edit the document's text into ``target`` with a minimal diff, in one transaction.

    pycrdt indexes text by UTF-8 byte offsets (Yjs clients count UTF-16
    units), so character positions from the diff are converted to bytes.
    Edits are applied from the end so earlier offsets stay valid.
    """
    text = doc.get(TEXT_NAME, type=Text)
    current = str(text)
    matcher = difflib.SequenceMatcher(a=current, b=target, autojunk=False)
    with doc.transaction():
        for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
            if tag == "equal":
                continue
            start, end = _utf8_offset(current, i1), _utf8_offset(current, i2)
            if end > start:
                del text[start:end]
            if j2 > j1:
                text.insert(start, target[j1:j2])


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))
