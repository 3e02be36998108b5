"""Schemas of the invitation routes (also their OpenAPI components)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from collab.api.invite_store import DEFAULT_HOURS, MAX_HOURS
from collab.api.project_schemas import MEMBER_ROLES
from webcore.fields import EmailAddress

_TIME_EXAMPLE = "2025-02-03T09:30:00.000000Z"


class InviteCreateSchema(Schema):
    """``POST /api/projects/{project_id}/invites`` body."""

    role = fields.String(
        required=True, validate=validate.OneOf(MEMBER_ROLES), metadata={"example": "editor"}
    )
    email = EmailAddress(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "When given, only the account with this email may accept.",
            "example": "grace@example.com",
        },
    )
    expires_in_hours = fields.Integer(
        load_default=DEFAULT_HOURS,
        strict=True,
        validate=validate.Range(1, MAX_HOURS),
        metadata={"description": f"1 to {MAX_HOURS}; default {DEFAULT_HOURS}.", "example": 24},
    )


class NewInviteSchema(Schema):
    """A created invitation: the only answer that shows its token."""

    id = fields.String()
    token = fields.String(metadata={"description": "Secret; only its digest is stored."})
    url = fields.String(
        metadata={
            "description": "The server's page with `#invite=<token>`: open it to accept.",
            "example": "https://collab.example.com/#invite=Zm9v...",
        }
    )
    role = fields.String(validate=validate.OneOf(MEMBER_ROLES))
    email = fields.String(allow_none=True)
    expires_at = fields.DateTime(metadata={"example": _TIME_EXAMPLE})


class InviteSchema(Schema):
    """An invitation as listed: never its token."""

    id = fields.String()
    role = fields.String(validate=validate.OneOf(MEMBER_ROLES))
    email = fields.String(allow_none=True)
    status = fields.String(
        validate=validate.OneOf(("pending", "accepted", "revoked", "expired")),
        metadata={"description": "Only `pending` invitations can still be accepted."},
    )
    created_at = fields.DateTime(metadata={"example": _TIME_EXAMPLE})
    expires_at = fields.DateTime(metadata={"example": _TIME_EXAMPLE})
    accepted_by = fields.String(allow_none=True, metadata={"description": "A user id."})


class InviteListSchema(Schema):
    """A project's invitations, newest first."""

    items = fields.List(fields.Nested(InviteSchema))


class MemberInvitedSchema(Schema):
    """The answer of adding a member by an email nobody registered yet."""

    invite = fields.Nested(NewInviteSchema)
