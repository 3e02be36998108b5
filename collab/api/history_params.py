"""What the history routes share: seq ranges, times, sources and author names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow
from marshmallow import fields, validate

from eventstore import Connection
from eventstore.changes import EventInfo
from eventstore.eventlog import EventLog
from eventstore.events import is_valid_source
from webcore.errors import ValidationError

SOURCE_REGEX = r"^[a-z0-9:._-]{1,64}$"
SOURCE_RULE = "1-64 characters of [a-z0-9:._-]"
_NAMES = "SELECT id, display_name FROM users WHERE id = $1"


def _no_newline(value: str) -> None:
    if not is_valid_source(value):
        raise marshmallow.ValidationError(f"Must be {SOURCE_RULE}.")


def source_field(**kwargs: Any) -> fields.String:
    """A ``source`` label field: which tool or agent made (or makes) the events."""
    return fields.String(
        # ``$`` also matches before a final newline, which is_valid_source refuses.
        # A list, not validate.And: apispec reads the Regexp into the OpenAPI pattern.
        validate=[validate.Regexp(SOURCE_REGEX, error=f"Must be {SOURCE_RULE}."), _no_newline],
        metadata={"description": f"Tool or agent label, {SOURCE_RULE}.", "example": "ai:assistant"},
        **kwargs,
    )


def aware_time(**kwargs: Any) -> fields.AwareDateTime:
    """An ISO 8601 time that must carry its time zone (``...Z`` or ``+02:00``)."""
    return fields.AwareDateTime(metadata={"example": "2025-01-31T09:30:00Z"}, **kwargs)


def out_of_range(name: str, seq: int, head: int) -> ValidationError:
    """The 422 for a seq outside ``[0, head]``, naming the valid range."""
    message = f"{name} {seq} is out of range: valid seqs are 0 to {head}"
    return ValidationError(message, details={name: [message], "valid_range": [0, head]})


async def require_seq(log: EventLog, doc_id: str, seq: int | None, name: str) -> int:
    """The head seq, after checking ``seq`` (when given) is in ``[0, head]``.

    Raises:
        ValidationError: ``seq`` is past the head.
        UnknownLogError: the document has no log.
    """
    head = (await log.head(doc_id)).seq
    if seq is not None and not 0 <= seq <= head:
        raise out_of_range(name, seq, head)
    return head


async def seq_at(log: EventLog, doc_id: str, moment: datetime) -> int:
    """The newest seq committed at or before ``moment`` (0 when none)."""
    return await log.seq_at_time(doc_id, moment.timestamp())


async def display_names(db: Connection, user_ids: set[str | None]) -> dict[str | None, Any]:
    """The display name of each user id (None for unknown users)."""
    names: dict[str | None, Any] = {}
    for user_id in user_ids - {None}:
        row = await db.fetchrow(_NAMES, user_id)
        names[user_id] = None if row is None else row["display_name"]
    return names


def attribution(info: EventInfo | None, names: dict[str | None, Any]) -> dict[str, Any]:
    """The author, seq and source fields of a run made by ``info``."""
    if info is None:
        return {}
    return {
        "author_id": info.author_id,
        "author_name": names.get(info.author_id),
        "seq": info.seq,
        "source": info.source,
    }
