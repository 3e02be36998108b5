"""Schemas of the document metadata routes (also their OpenAPI components)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from eventstore import Row
from webcore.fields import Text, iso_time

NAME_MAX = 200
LANGUAGES = ("python", "javascript", "text")


class DocumentCreateSchema(Schema):
    """``POST /api/projects/{project_id}/documents`` body."""

    name = Text(
        required=True,
        validate=validate.Length(1, NAME_MAX),
        metadata={"description": f"1 to {NAME_MAX} characters, trimmed.", "example": "main.py"},
    )
    language = fields.String(
        required=True, validate=validate.OneOf(LANGUAGES), metadata={"example": "python"}
    )


class DocumentUpdateSchema(Schema):
    """``PATCH /api/documents/{doc_id}`` body: only the fields given change."""

    name = Text(validate=validate.Length(1, NAME_MAX), metadata={"example": "app.py"})
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"example": "python"})


class DocumentSchema(Schema):
    """A document's metadata; its text is the Yjs ``Y.Text`` named ``content``."""

    id = fields.String(metadata={"example": "5d1e3b7a9c2f4e6a8b0c1d2e3f4a5b6c"})
    project_id = fields.String(metadata={"example": "0b6f4e0c2d7a4f3b9a8e1c5d7f9b2a4c"})
    name = fields.String(metadata={"example": "main.py"})
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"example": "python"})
    head_seq = fields.Integer(
        metadata={"description": "The seq of the newest event in its log (0: none yet)."}
    )
    created_at = fields.DateTime(metadata={"example": "2025-01-31T09:30:00.000000Z"})
    updated_at = fields.DateTime(
        metadata={
            "description": "When its metadata last changed.",
            "example": "2025-01-31T09:30:00.000000Z",
        }
    )


class DocumentListSchema(Schema):
    """A project's documents in name order."""

    items = fields.List(fields.Nested(DocumentSchema))


def document_json(row: Row) -> dict[str, Any]:
    """A document row (joined with its log head) as the API renders it."""
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "name": row["name"],
        "language": row["language"],
        "head_seq": int(row["head_seq"]),
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
    }
