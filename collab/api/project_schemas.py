"""Schemas of the project and member routes (also their OpenAPI components)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from eventstore import Row
from webcore.fields import EmailAddress, Text, iso_time

NAME_MAX = 200
DESCRIPTION_MAX = 2000
ROLES = ("owner", "editor", "viewer")
# The owner is fixed at creation; members can only be given these.
MEMBER_ROLES = ("editor", "viewer")
_ID_EXAMPLE = "0b6f4e0c2d7a4f3b9a8e1c5d7f9b2a4c"


class ProjectCreateSchema(Schema):
    """``POST /api/projects`` body."""

    name = Text(
        required=True,
        validate=validate.Length(1, NAME_MAX),
        metadata={"description": f"1 to {NAME_MAX} characters, trimmed.", "example": "Compilers"},
    )
    description = Text(
        load_default="",
        allow_control=True,
        validate=validate.Length(max=DESCRIPTION_MAX),
        metadata={"example": "Homework for the compilers course"},
    )


class ProjectUpdateSchema(Schema):
    """``PATCH /api/projects/{project_id}`` body: only the fields given change."""

    name = Text(validate=validate.Length(1, NAME_MAX), metadata={"example": "Compilers 2"})
    description = Text(
        allow_control=True,
        validate=validate.Length(max=DESCRIPTION_MAX),
        metadata={"example": "Homework, second term"},
    )


class ProjectSchema(Schema):
    """A project, with the caller's role in it."""

    id = fields.String(metadata={"example": _ID_EXAMPLE})
    name = fields.String(metadata={"example": "Compilers"})
    description = fields.String(metadata={"example": "Homework for the compilers course"})
    owner_id = fields.String()
    role = fields.String(
        validate=validate.OneOf(ROLES), metadata={"description": "The caller's role."}
    )
    created_at = fields.DateTime(metadata={"example": "2025-01-31T09:30:00.000000Z"})


class ProjectListSchema(Schema):
    """The caller's projects, newest first."""

    items = fields.List(fields.Nested(ProjectSchema))


class MemberAddSchema(Schema):
    """``POST /api/projects/{project_id}/members`` body."""

    email = EmailAddress(required=True, metadata={"example": "grace@example.com"})
    role = fields.String(
        required=True, validate=validate.OneOf(MEMBER_ROLES), metadata={"example": "editor"}
    )


class MemberRoleSchema(Schema):
    """``PATCH /api/projects/{project_id}/members/{user_id}`` body."""

    role = fields.String(
        required=True, validate=validate.OneOf(MEMBER_ROLES), metadata={"example": "viewer"}
    )


class MemberSchema(Schema):
    """A member of a project."""

    user_id = fields.String(metadata={"example": _ID_EXAMPLE})
    email = fields.String(metadata={"example": "grace@example.com"})
    display_name = fields.String(metadata={"example": "Grace Hopper"})
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"example": "editor"})


class MemberListSchema(Schema):
    """A project's members in the order they joined (the owner first)."""

    items = fields.List(fields.Nested(MemberSchema))


def project_json(row: Row) -> dict[str, Any]:
    """A project row (joined with the caller's membership) as the API renders it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "owner_id": row["owner_id"],
        "role": row["role"],
        "created_at": iso_time(row["created_at"]),
    }


def member_json(row: Row) -> dict[str, Any]:
    """A membership row (joined with its user) as the API renders it."""
    return {
        "user_id": row["user_id"],
        "email": row["email"],
        "display_name": row["display_name"],
        "role": row["role"],
    }
