"""The languages the sandbox can run, and how each interpreter is invoked.

Adding a language is one entry in ``LANGUAGES``: the interpreter's absolute
path (it must live under ``/usr`` so that the bubblewrap sandbox can see it),
the file name the source is written to, the arguments, and which rlimit
caps its memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

MIB = 1024 * 1024

MemoryRlimit = Literal["address_space", "data"]


class LanguageError(Exception):
    """Base class of the errors about languages."""


class UnknownLanguageError(LanguageError):
    """No language of that name is registered."""

    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(LANGUAGES))
        super().__init__(f"unknown language {name!r} (known: {known})")


class LanguageUnavailableError(LanguageError):
    """The language is registered but its runtime is not installed here."""

    def __init__(self, language: Language) -> None:
        super().__init__(
            f"language {language.name!r} is not available on this server: "
            f"runtime {language.runtime} is missing or not executable"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    """How to run one language's source file.

    Attributes:
        name: The name clients use (``"python"``).
        runtime: Absolute path of the interpreter.
        filename: Name of the source file inside the work directory.
        args: Arguments between the interpreter and the file; ``{heap_mib}``
            is replaced by the heap budget in MiB.
        memory_rlimit: ``"address_space"`` caps RLIMIT_AS; ``"data"`` caps
            RLIMIT_DATA instead, for runtimes (V8) that reserve far more
            address space than they use.
        heap_fraction: Share of the memory limit given as ``{heap_mib}``.
    """

    name: str
    runtime: str
    filename: str
    args: tuple[str, ...] = ()
    memory_rlimit: MemoryRlimit = "address_space"
    heap_fraction: float = 0.75

    def available(self) -> bool:
        """Whether the runtime exists and is executable."""
        return os.path.isfile(self.runtime) and os.access(self.runtime, os.X_OK)

    def command(self, source_path: str, *, memory_bytes: int) -> list[str]:
        """The argv that runs ``source_path`` within ``memory_bytes``."""
        heap_mib = max(16, int(memory_bytes * self.heap_fraction) // MIB)
        args = [arg.format(heap_mib=heap_mib) for arg in self.args]
        return [self.runtime, *args, source_path]


LANGUAGES: dict[str, Language] = {
    # -I: ignore PYTHON* variables and the user site; -S: no site-packages;
    # -B: write no .pyc; -u: unbuffered, so output streams live and is not
    # lost in a buffer when the run is killed.
    "python": Language(
        name="python",
        runtime="/usr/bin/python3",
        filename="main.py",
        args=("-I", "-S", "-B", "-u"),
    ),
    # RLIMIT_AS kills V8 at start-up (it reserves huge regions), so Node is
    # capped with RLIMIT_DATA plus a V8 heap limit below it.
    "javascript": Language(
        name="javascript",
        runtime="/usr/bin/node",
        filename="main.js",
        args=("--max-old-space-size={heap_mib}",),
        memory_rlimit="data",
        heap_fraction=0.6,
    ),
}


def get_language(name: str) -> Language:
    """The registered language called ``name``, checked to be runnable.

    Raises:
        UnknownLanguageError: No such language is registered.
        LanguageUnavailableError: Its runtime is not installed.
    """
    try:
        language = LANGUAGES[name]
    except KeyError:
        raise UnknownLanguageError(name) from None
    if not language.available():
        raise LanguageUnavailableError(language)
    return language
