"""Safe use of pycrdt documents.

yrs can panic inside ``apply_update``, and pyo3 raises its ``PanicException``
as a ``BaseException``; :func:`apply_update` turns that into
:class:`UpdateRejectedError` so callers can drop the update (and treat the
document as poisoned) with an ordinary ``except``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from pycrdt import Doc, Text

TEXT_NAME = "content"
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
