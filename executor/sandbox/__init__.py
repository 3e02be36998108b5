"""Run untrusted code in a sandbox.

The modules say which side of the fork they run on:

``run.py``
    The entry, in the server: ``run_code`` prepares a run (directory, uid
    slot, limits, command line) and turns the supervisor's report into a
    ``RunResult``.
``parent.py``
    Also in the server: starts the supervisor process, feeds it, streams its
    output and stops it.
``child.py``
    The supervisor script, in its own process forked off the server. It is
    started as ``python -I -S child.py`` and imports nothing of the package.
``isolation.py``, ``seccomp.py``, ``languages.py``
    In the server: the modes and their detection, the system-call filter,
    and the interpreters.

Imports go one way: ``run`` uses ``parent``, ``isolation``, ``seccomp`` and
``languages``; ``parent`` and ``isolation`` read only constants of ``child``;
``isolation`` uses ``seccomp``; ``parent`` and ``isolation`` never import
each other. See ``docs/executor.md`` for the design.
"""

from executor.sandbox.run import (
    Limits,
    OutputCallback,
    Protections,
    RunResult,
    detect_protections,
    run_code,
)

__all__ = [
    "Limits",
    "OutputCallback",
    "Protections",
    "RunResult",
    "detect_protections",
    "run_code",
]
