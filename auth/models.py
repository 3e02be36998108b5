"""The account as the rest of the server sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated account."""

    id: str
    email: str
    display_name: str
    created_at: float
