"""Show a job's program under its document's name in its output.

The sandbox writes the source to a fixed file (``/sandbox/main.py``), so a
traceback would name that file. When a job ran a document, its output
names the document instead (``File "fib.py", line 3``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from executor.sandbox.isolation import SANDBOX_HOME
from executor.sandbox.languages import LANGUAGES

_NAME_MAX = 200
_DROPPED = '"\\/'


def display_name(document_name: str) -> str:
    """A document name made safe to print in a path: no separators, quotes or controls."""
    kept = "".join(
        c for c in document_name if c not in _DROPPED and unicodedata.category(c)[0] != "C"
    )
    return kept.strip()[:_NAME_MAX]


def path_renamer(language: str, document_name: str | None) -> Callable[[str], str]:
    """A function that writes the document's name where output names the sandbox file."""
    spec = LANGUAGES.get(language)
    shown = display_name(document_name or "")
    if spec is None or not shown:
        return _unchanged
    sandbox_path = f"{SANDBOX_HOME}/{spec.filename}"

    def rename(text: str) -> str:
        return text.replace(sandbox_path, shown) if sandbox_path in text else text

    return rename


def _unchanged(text: str) -> str:
    return text
