"""Error responses in the OpenAPI document: every status a route can answer, with its shape.

Every error the API returns is ``{"error": {"code", "message", "details"}}``.
:func:`error_responses` builds the ``responses`` entries for a route's
``@docs`` (status → description + that schema). :func:`document_errors`
completes a finished OpenAPI document: each operation gets the statuses
every route of its kind can answer (401 when it needs a token, 400/413/422
when it takes a body, 404 when its path names something, 429 when it is
rate limited), and every error response without a body schema gets the
error schema, so Swagger UI never shows an error as "Undocumented".
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
_UNSAFE = ("post", "put", "patch", "delete")
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


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


def document_errors(spec: dict[str, Any], *, public: set[tuple[str, str]]) -> None:
    """Complete every ``/api`` operation of ``spec`` with its standard error responses.

    Args:
        spec: the OpenAPI document, changed in place.
        public: ``(METHOD, path)`` of operations that need no token.
    """
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in spec.get("paths", {}).items():
        if not path.startswith("/api/") or path.startswith("/api/docs"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _standard_statuses(method, path, operation, public):
                responses.setdefault(str(status), {"description": STANDARD[status]})
            for status, response in responses.items():
                if str(status)[:1] in ("4", "5") and "content" not in response:
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}


def _standard_statuses(
    method: str, path: str, operation: dict[str, Any], public: set[tuple[str, str]]
) -> list[int]:
    statuses = []
    if (method.upper(), path) not in public:
        statuses.append(401)
    if "requestBody" in operation:
        statuses += [400, 413, 422]
    elif operation.get("parameters") and any(
        p.get("in") == "query" for p in operation["parameters"]
    ):
        statuses.append(422)
    if "{" in path:
        statuses.append(404)
    if method in _UNSAFE and (method.upper(), path) not in public:
        statuses.append(403)  # a role too low, or a session cookie from another site
    return statuses
