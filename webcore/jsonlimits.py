"""JSON parsing with a bound on nesting, for anything a client sends.

``json.loads`` recurses once per level and raises ``RecursionError`` near a
thousand levels: a tiny hostile document then escapes every ``ValueError``
handler and becomes a 500 or a dropped connection with a traceback. Nothing
we accept legitimately nests deeper than a few levels, so depth is capped far
lower, and both failures surface as :class:`JsonTooDeepError` (a ValueError).
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64


class JsonTooDeepError(ValueError):
    """The JSON nests deeper than allowed."""


def loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, refusing values nested deeper than ``max_depth``.

    Raises:
        JsonTooDeepError: nested too deeply.
        ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeepError(f"JSON nested deeper than {max_depth} levels") from None
    if depth_exceeds(value, max_depth):
        raise JsonTooDeepError(f"JSON nested deeper than {max_depth} levels")
    return value


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether ``value`` holds containers nested more than ``max_depth`` deep.

    Iterative, so checking a deep value cannot itself overflow the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
