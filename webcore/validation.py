"""Request validation from the marshmallow schemas the routes declare.

Routes declare their schemas with aiohttp-apigami's ``@request_schema``
(which also documents them in OpenAPI). This middleware, not apigami's own,
does the parsing so that every failure has the usual JSON error shape: a body
that is not JSON is 400, a body over the limit 413, invalid fields 422 with
``details`` naming each field.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import marshmallow
from aiohttp import web
from aiohttp.typedefs import Handler

from webcore.errors import BadRequestError, ValidationError
from webcore.jsonlimits import JsonTooDeepError, loads

JSON_BODY = web.RequestKey("webcore.json_body", dict)
QUERY = web.RequestKey("webcore.query", dict)
_SCHEMAS_ATTR = "__schemas__"
_OPTIONAL_ATTR = "__webcore_optional_body__"
_H = TypeVar("_H")


def optional_body(handler: _H) -> _H:
    """Let a route's JSON body be empty (validated as ``{}``), e.g. when a cookie stands in."""
    setattr(handler, _OPTIONAL_ATTR, True)
    return handler


def body(request: web.Request) -> dict[str, Any]:
    """The validated JSON body of the current request."""
    data: dict[str, Any] = request[JSON_BODY]
    return data


def query(request: web.Request) -> dict[str, Any]:
    """The validated query string of the current request."""
    data: dict[str, Any] = request[QUERY]
    return data


async def read_json(request: web.Request) -> Any:
    """Parse the body as JSON.

    Raises:
        BadRequestError: the body is empty, not JSON, or nested too deeply.
    """
    raw = await request.read()
    if not raw:
        raise BadRequestError("the request body must be a JSON object")
    try:
        return loads(raw)
    except JsonTooDeepError as exc:
        raise BadRequestError(str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("the request body is not valid JSON") from None


def load(schema: marshmallow.Schema, data: Any) -> dict[str, Any]:
    """Validate ``data`` against ``schema``.

    Raises:
        ValidationError: with the field-by-field messages in ``details``.
    """
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object", details={"_schema": ["not an object"]})
    try:
        result: dict[str, Any] = schema.load(data)
    except marshmallow.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ValidationError("some fields are invalid", details=messages) from None
    return result


@web.middleware
def validation_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Validate the body and query of routes that declare schemas.

    A route without schemas gets the next handler's awaitable rather than a
    wait for it: a waiting middleware stays in memory as long as its
    request, a WebSocket's included.
    """
    if not getattr(request.match_info.handler, _SCHEMAS_ATTR, ()):
        return handler(request)
    return _validated(request, handler)


async def _validated(request: web.Request, handler: Handler) -> web.StreamResponse:
    for declared in getattr(request.match_info.handler, _SCHEMAS_ATTR, ()):
        if declared.location == "json":
            empty_ok = getattr(request.match_info.handler, _OPTIONAL_ATTR, False)
            raw = {} if empty_ok and not await request.read() else await read_json(request)
            request[JSON_BODY] = load(declared.schema, raw)
        elif declared.location in ("query", "querystring"):
            request[QUERY] = load(declared.schema, dict(request.query))
    return await handler(request)
