"""Errors raised by the storage layer.

Hierarchy::

    EventStoreError
    ├── DatabaseUnavailableError   the database did not answer (status 503)
    ├── UniqueViolationError       an INSERT hit a unique constraint
    ├── SeqConflictError           another writer appended to the document first
    ├── UnknownLogError            no log for that document (status 404)
    └── LogCorruptError            the hash chain or a stored update does not verify

Each carries an HTTP ``status`` and a ``code`` so the web layer can render it
without knowing the storage internals.
"""

from __future__ import annotations

from typing import ClassVar


class EventStoreError(Exception):
    """Base class of every storage error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "storage_error"


class DatabaseUnavailableError(EventStoreError):
    """The database could not be reached or dropped the connection."""

    status = 503
    code = "database_unavailable"


class UniqueViolationError(EventStoreError):
    """A row with the same unique key already exists."""

    status = 409
    code = "conflict"


class SeqConflictError(EventStoreError):
    """The document's head moved on since the writer last read it."""

    status = 409
    code = "seq_conflict"

    def __init__(self, doc_id: str, expected: int, actual: int) -> None:
        super().__init__(f"document {doc_id!r}: expected head {expected}, found {actual}")
        self.doc_id = doc_id
        self.expected = expected
        self.actual = actual


class LogCorruptError(EventStoreError):
    """The event log failed verification."""

    code = "log_corrupt"


class UnknownLogError(EventStoreError):
    """The document has no event log (it does not exist or was deleted)."""

    status = 404
    code = "not_found"

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"document {doc_id!r} has no event log")
        self.doc_id = doc_id
