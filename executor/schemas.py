"""Schemas of the job routes (also their OpenAPI components)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from executor.models import STATUSES
from executor.sandbox.languages import LANGUAGES
from executor.sandbox.run import MAX_WALL_MS
from webcore.fields import Text

DEFAULT_TIMEOUT_MS = 10_000
MAX_SOURCE_BYTES = 256 * 1024
MAX_STDIN_BYTES = 256 * 1024
_INLINE_FIELDS = ("project_id", "language", "source")
_TIME_EXAMPLE = "2025-01-31T09:30:00.000000Z"


class JobSubmitSchema(Schema):
    """``POST /api/jobs``: a document's text at its head, or inline source."""

    document_id = fields.String(
        metadata={"description": "Run this document's text at its head (editor+)."}
    )
    project_id = fields.String(metadata={"description": "With inline `source`: the project."})
    language = fields.String(
        validate=validate.OneOf(sorted(LANGUAGES)), metadata={"example": "python"}
    )
    source = Text(
        strip=False,
        allow_control=True,
        metadata={
            "description": f"The program (at most {MAX_SOURCE_BYTES} bytes as UTF-8).",
            "example": "print(input().upper())",
        },
    )
    stdin = Text(
        strip=False,
        allow_control=True,
        load_default="",
        metadata={"description": f"Standard input (at most {MAX_STDIN_BYTES} bytes)."},
    )
    timeout_ms = fields.Integer(
        strict=True,
        load_default=DEFAULT_TIMEOUT_MS,
        validate=validate.Range(1, MAX_WALL_MS),
        metadata={"description": "Wall-clock limit of the run.", "example": DEFAULT_TIMEOUT_MS},
    )

    @validates_schema
    def _one_form(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "document_id" in data:
            given = [name for name in _INLINE_FIELDS if name in data]
            if given:
                raise ValidationError({name: ["Not allowed with document_id."] for name in given})
            return
        missing = [name for name in _INLINE_FIELDS if name not in data]
        if missing:
            message = "Missing data for required field (or give document_id instead)."
            raise ValidationError({name: [message] for name in missing})


class JobListQuerySchema(Schema):
    """How many of the newest jobs to list."""

    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class OutputChunkSchema(Schema):
    """A piece of a job's output."""

    stream = fields.String(validate=validate.OneOf(("stdout", "stderr")))
    offset = fields.Integer(metadata={"description": "Where `text` starts in its stream."})
    text = fields.String()


class JobSchema(Schema):
    """A code-execution job."""

    id = fields.String()
    project_id = fields.String()
    document_id = fields.String(allow_none=True)
    seq = fields.Integer(
        allow_none=True, metadata={"description": "The document event whose text ran."}
    )
    language = fields.String(metadata={"example": "python"})
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"example": "succeeded"})
    exit_code = fields.Integer(allow_none=True)
    stdout = fields.String()
    stderr = fields.String()
    truncated = fields.Boolean(metadata={"description": "Output beyond 1 MiB was dropped."})
    duration_ms = fields.Integer(allow_none=True)
    created_at = fields.DateTime(metadata={"example": _TIME_EXAMPLE})
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Why it did not just exit."})
    output = fields.List(
        fields.Nested(OutputChunkSchema),
        metadata={"description": "stdout and stderr as one sequence, in the order printed."},
    )


class JobListSchema(Schema):
    """Jobs, newest first."""

    items = fields.List(fields.Nested(JobSchema))
