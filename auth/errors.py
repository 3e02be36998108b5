"""Errors of the auth package, rendered by the web layer's error middleware.

Hierarchy::

    AuthError                         500 auth_error
    ├── UnauthorizedError             401 unauthorized (WWW-Authenticate: Bearer)
    ├── InvalidTokenError             401 invalid_token
    ├── InvalidCredentialsError       401 invalid_credentials
    ├── OriginRefusedError            403 origin_refused (cookie from a foreign page)
    ├── EmailTakenError               409 email_taken
    └── RateLimitedError              429 rate_limited (Retry-After header)

``auth`` does not import ``collab`` (dependencies point one way), so these
carry the attributes the error middleware reads: ``status``, ``code``,
``details`` and ``headers``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AuthError(Exception):
    """Base class: an authentication failure with an HTTP status and a stable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "auth_error"

    def __init__(self, message: str = "", *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.details: dict[str, Any] = details or {}
        self.headers: dict[str, str] = {}


class UnauthorizedError(AuthError):
    """A protected route was called without a valid access token."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "", *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or "a valid access token is required", details=details)
        # RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
        self.headers["WWW-Authenticate"] = 'Bearer realm="collab"'


class InvalidTokenError(AuthError):
    """A token is malformed, forged, expired, of the wrong kind or revoked."""

    status = 401
    code = "invalid_token"


class InvalidCredentialsError(AuthError):
    """Unknown email or wrong password; deliberately does not say which."""

    status = 401
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("the email or password is not correct")


class OriginRefusedError(AuthError):
    """A cookie-authenticated change came from a page whose origin is not allowed."""

    status = 403
    code = "origin_refused"

    def __init__(self) -> None:
        super().__init__(
            "a request authenticated by cookie must come from an allowed Origin"
            " (or send an Authorization header instead)"
        )


class EmailTakenError(AuthError):
    """Another account already uses this email address."""

    status = 409
    code = "email_taken"

    def __init__(self) -> None:
        super().__init__(
            "an account with this email already exists",
            details={"email": ["is already registered"]},
        )


class RateLimitedError(AuthError):
    """Too many attempts; retry after ``retry_after`` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many attempts, try again later", details={"retry_after": retry_after})
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)
