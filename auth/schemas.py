"""Request and response schemas of the auth routes (also their OpenAPI components).

Class names are the component names in the OpenAPI document, so they are
specific to this package.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from auth.models import User
from webcore.fields import EmailAddress, Text, iso_time

PASSWORD_MIN = 8
# argon2 accepts any length, but hashing megabytes per attempt is a cheap DoS.
PASSWORD_MAX = 1024
DISPLAY_NAME_MAX = 100
TOKEN_MAX = 4096
_TOKEN_EXAMPLE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."  # noqa: S105 - a truncated sample


class RegisterRequestSchema(Schema):
    """``POST /api/auth/register`` body."""

    email = EmailAddress(required=True, metadata={"example": "ada@example.com"})
    password = Text(
        required=True,
        strip=False,
        allow_control=True,
        validate=validate.Length(PASSWORD_MIN, PASSWORD_MAX),
        metadata={
            "description": f"At least {PASSWORD_MIN} characters.",
            "example": "correct horse battery staple",
        },
    )
    display_name = Text(
        required=True,
        validate=validate.Length(1, DISPLAY_NAME_MAX),
        metadata={"example": "Ada Lovelace"},
    )


class LoginRequestSchema(Schema):
    """``POST /api/auth/login`` body."""

    email = EmailAddress(required=True, metadata={"example": "ada@example.com"})
    password = Text(
        required=True,
        strip=False,
        allow_control=True,
        validate=validate.Length(1, PASSWORD_MAX),
        metadata={"example": "correct horse battery staple"},
    )


_OPTIONAL_REFRESH = (
    "The `refresh_token` of a token pair. Leave it out (or send no body at all) to use"
    " the `collab_refresh` cookie set by register, login and refresh."
)


class RefreshRequestSchema(Schema):
    """``POST /api/auth/refresh`` body (optional when the refresh cookie is sent)."""

    refresh_token = Text(
        validate=validate.Length(1, TOKEN_MAX),
        metadata={"description": _OPTIONAL_REFRESH, "example": _TOKEN_EXAMPLE},
    )


class LogoutRequestSchema(Schema):
    """``POST /api/auth/logout`` body: the refresh token whose session ends (or its cookie)."""

    refresh_token = Text(
        validate=validate.Length(1, TOKEN_MAX),
        metadata={"description": _OPTIONAL_REFRESH, "example": _TOKEN_EXAMPLE},
    )


class UserSchema(Schema):
    """An account as the API shows it."""

    id = fields.String(metadata={"example": "6f1c2b9e8a4d4c0f9b1e2d3c4b5a6978"})
    email = fields.String(metadata={"example": "ada@example.com"})
    display_name = fields.String(metadata={"example": "Ada Lovelace"})
    created_at = fields.DateTime(metadata={"example": "2025-01-31T09:30:00.000000Z"})


class AuthTokensSchema(Schema):
    """The answer to register, login and refresh."""

    user = fields.Nested(UserSchema)
    access_token = fields.String(metadata={"description": "Send as `Authorization: Bearer …`."})
    refresh_token = fields.String(
        metadata={"description": "Single use: POST it to /api/auth/refresh for a new pair."}
    )
    token_type = fields.String(metadata={"example": "bearer"})
    expires_in = fields.Integer(
        metadata={"description": "Seconds until the access token expires.", "example": 900}
    )
    session_cookie = fields.Boolean(
        metadata={
            "description": "True: the session is also set as HttpOnly cookies, so a browser's"
            " WebSocket and event streams need no token in their URL.",
            "example": True,
        }
    )


def user_json(user: User) -> dict[str, Any]:
    """``user`` as the API renders it."""
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": iso_time(user.created_at),
    }
