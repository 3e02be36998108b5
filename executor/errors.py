"""Errors of the code-execution area.

Hierarchy::

    ExecutorError                 500 internal
    ├── JobRejectedError          422 validation_failed (details name each field)
    ├── JobTooLargeError          413 payload_too_large (source or stdin over the limit)
    └── QueueUnavailableError     503 service_unavailable (queue full, Redis down)

Each carries an HTTP ``status`` and a ``code`` so the web layer renders it
without knowing this package.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ExecutorError(Exception):
    """Base class of every executor error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = details or {}


class JobRejectedError(ExecutorError):
    """The job cannot run as submitted (e.g. a document in a non-runnable language)."""

    status = 422
    code = "validation_failed"


class JobTooLargeError(ExecutorError):
    """The source or stdin is larger than a job may carry."""

    status = 413
    code = "payload_too_large"


class QueueUnavailableError(ExecutorError):
    """The job could not be queued; nothing was accepted, the client may retry."""

    status = 503
    code = "service_unavailable"
