"""Where PostgreSQL and SQLite differ, in one place.

Callers write PostgreSQL SQL with ``$n`` parameters. A few constructs have no
common spelling; they are the attributes of :class:`Dialect`, used by
formatting them into query constants once at import, never per call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Dialect:
    """The engine-specific spellings."""

    name: str
    # Row lock on SELECT: Postgres needs it to serialise appends to one
    # document; SQLite has a single writer, so a plain SELECT suffices.
    for_update: str

    def translate(self, sql: str) -> str:
        """Rewrite ``$n`` parameters for this engine."""
        if self.name == "sqlite":
            return _PARAM.sub(r"?\1", sql)
        return sql


POSTGRES = Dialect(name="postgres", for_update=" FOR UPDATE")
SQLITE = Dialect(name="sqlite", for_update="")
