"""Error responses in the OpenAPI document: every status a route can answer, with its shape.

Every error the API returns is ``{"error": {"code", "message", "details"}}``.
:func:`error_responses` builds the ``responses`` entries for a route's
``@docs`` (status → description + that schema). ``collab.api.openapi``
completes the finished document with the statuses every operation can
answer, so Swagger UI never shows an error as "Undocumented".
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_failed"},
                "message": {"type": "string", "example": "some fields are invalid"},
                "details": {
                    "type": "object",
                    "description": "Per-field messages for 422; `retry_after` for 429.",
                    "example": {"name": ["Missing data for required field."]},
                },
            },
        }
    },
}

STANDARD: dict[int, str] = {
    400: "`bad_request`: the body is not JSON.",
    401: "`unauthorized` or `invalid_token`: no valid access token or session cookie.",
    403: "`forbidden`: your role does not allow this; `origin_refused`: a cookie from"
    " another site.",
    404: "`not_found`: no such object, or you are not a member of its project.",
    409: "`conflict`: the change conflicts with the current state.",
    410: "Gone: it expired or was used.",
    413: "`payload_too_large`: the body is larger than allowed.",
    422: "`validation_failed`: `details` names each invalid field.",
    429: "`rate_limited`: wait `Retry-After` seconds.",
    503: "`service_unavailable`: a dependency is down; retry later.",
}


def error_response(description: str) -> dict[str, Any]:
    """One error response entry with the error schema."""
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def error_responses(*statuses: int, **descriptions: str) -> dict[int, dict[str, Any]]:
    """``@docs(responses=...)`` entries for ``statuses``.

    Args:
        *statuses: the statuses, described by :data:`STANDARD`.
        **descriptions: overrides as ``s404="..."`` (``s`` + status).
    """
    entries = {}
    for status in statuses:
        text = descriptions.get(f"s{status}", STANDARD.get(status, "An error."))
        entries[status] = error_response(text)
    return entries
