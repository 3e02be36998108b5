"""Marshmallow fields and formatting shared by the API's schemas.

Every string a client sends goes through :class:`Text`, which refuses what
the databases cannot store (lone UTF-16 surrogates, and NUL, which Postgres
rejects in ``text``), so bad input is a 422 and never a 500.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

EMAIL_MAX = 254  # RFC 5321's limit on a forward path
# Unicode category Cc: C0 controls, DEL and C1 controls (regex class body).
_CONTROL = r"\u0000-\u001f\u007f-\u009f"
# The largest integer a JSON client (JavaScript) holds exactly, and far inside
# both databases' 64-bit integers, so a bounded field can never overflow a query.
MAX_SAFE_INTEGER = 2**53 - 1


def bounded_integer(
    *, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER, **kwargs: Any
) -> fields.Integer:
    """An integer field with a validated range (422 outside it), documented in OpenAPI.

    Args:
        minimum: the smallest value accepted.
        maximum: the largest value accepted; never above :data:`MAX_SAFE_INTEGER`.
        **kwargs: passed to :class:`marshmallow.fields.Integer`.
    """
    return fields.Integer(
        validate=validate.Range(min=minimum, max=min(maximum, MAX_SAFE_INTEGER)), **kwargs
    )


def parse_bounded_int(raw: str, default: int = 0) -> int:
    """A non-negative integer from a header; ``default`` unless it is one in range."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_SAFE_INTEGER)):
        return default
    value = int(raw)
    return value if value <= MAX_SAFE_INTEGER else default


class Text(fields.String):
    """A string, trimmed unless ``strip=False``; control characters refused unless allowed.

    Args:
        strip: remove surrounding whitespace before validating the length.
        allow_control: accept control characters other than NUL (newlines in a
            description, anything in a password).
        **kwargs: passed to :class:`marshmallow.fields.String`.
    """

    def __init__(self, *, strip: bool = True, allow_control: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strip = strip
        self.allow_control = allow_control
        # Tell OpenAPI clients (and fuzzers) exactly which strings pass.
        self.metadata = {"pattern": self._pattern(), **self.metadata}

    def _pattern(self) -> str:
        allowed = r"[^\u0000]" if self.allow_control else f"[^{_CONTROL}]"
        nonblank = self.strip and any(
            isinstance(v, validate.Length) and (v.min or 0) > 0 for v in self.validators
        )
        if not nonblank:
            return f"^{allowed}*$"
        # Trimmed first, so a required value needs one character that is not a space.
        solid = r"[^\s\u0000]" if self.allow_control else rf"[^\s{_CONTROL}]"
        return f"^{allowed}*{solid}{allowed}*$"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Not valid Unicode text.") from None
        if "\x00" in text or (
            not self.allow_control and any(unicodedata.category(c) == "Cc" for c in text)
        ):
            raise ValidationError("Must not contain control characters.")
        return text.strip() if self.strip else text


class EmailAddress(Text):
    """An email address, trimmed and lower-cased (emails compare case-insensitively)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", [validate.Length(max=EMAIL_MAX), validate.Email()])
        super().__init__(**kwargs)
        self.metadata = {"format": "email", **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


def iso_time(epoch_seconds: float) -> str:
    """An epoch time as the API shows it: ISO-8601 in UTC, e.g. ``2025-01-31T09:30:00.123456Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
