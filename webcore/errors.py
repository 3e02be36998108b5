"""Errors the web layer turns into the JSON error shape ``{"error": {code, message, details}}``.

Hierarchy::

    CollabError                       500 internal
    ├── BadRequestError               400 bad_request
    ├── UnauthorizedError             401 unauthorized
    ├── ForbiddenError                403 forbidden
    ├── NotFoundError                 404 not_found
    ├── ConflictError                 409 conflict
    ├── PayloadTooLargeError          413 payload_too_large
    ├── ValidationError               422 validation_failed (details name each field)
    ├── RateLimitedError              429 rate_limited (Retry-After header)
    └── ServiceUnavailableError       503 service_unavailable

Other packages keep their own bases (``EventStoreError``, ``AuthError``,
``ExecutorError``); any exception whose class carries an integer ``status``
and a string ``code`` is rendered the same way by the error middleware.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CollabError(Exception):
    """Base class: a failure with an HTTP status and a stable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str = "", *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.details: dict[str, Any] = details or {}
        self.headers: dict[str, str] = {}


class BadRequestError(CollabError):
    """The request could not be parsed."""

    status = 400
    code = "bad_request"


class UnauthorizedError(CollabError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"


class ForbiddenError(CollabError):
    """Authenticated, but the role does not allow this."""

    status = 403
    code = "forbidden"


class NotFoundError(CollabError):
    """Unknown, or not visible to the caller."""

    status = 404
    code = "not_found"


class ConflictError(CollabError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class PayloadTooLargeError(CollabError):
    """The body is larger than allowed."""

    status = 413
    code = "payload_too_large"


class ValidationError(CollabError):
    """The body parsed but its fields are invalid; ``details`` maps field to messages."""

    status = 422
    code = "validation_failed"


class RateLimitedError(CollabError):
    """Too many requests; retry after ``retry_after`` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: int) -> None:
        super().__init__(message or "too many requests", details={"retry_after": retry_after})
        self.headers["Retry-After"] = str(retry_after)


class ServiceUnavailableError(CollabError):
    """A dependency (database, Redis, queue) is not answering."""

    status = 503
    code = "service_unavailable"
