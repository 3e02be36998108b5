"""Hocuspocus as a benchmark server: ``bench/js/hocuspocus-server.mjs`` in one Node process.

``@hocuspocus/server`` (pinned in ``bench/js``) with no extensions keeps its
documents in memory and saves nothing, like the stock y-websocket server. It
speaks Hocuspocus' own protocol (y-protocols messages prefixed with the
document's name, plus authentication and acknowledgements), so only its own
client, ``@hocuspocus/provider``, can drive it: its endpoints say so with
``protocol="hocuspocus"``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from bench.stock import JS_DIR, ensure_js

SERVER = JS_DIR / "hocuspocus-server.mjs"
PROTOCOL = "hocuspocus"
_READY = "listening on "
_OUTPUT_LINES_KEPT = 40


class HocuspocusStartError(RuntimeError):
    """The server exited or stayed silent instead of listening."""


@contextlib.asynccontextmanager
async def hocuspocus_server(*, within: float = 10.0) -> AsyncIterator[str]:
    """Run Hocuspocus on a free port of 127.0.0.1; yield its ``ws://`` base URL.

    Raises:
        BenchSkipError: Node.js is missing (from :func:`ensure_js`).
        HocuspocusStartError: it did not listen within ``within`` seconds.
    """
    await asyncio.to_thread(ensure_js)
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(SERVER),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: deque[str] = deque(maxlen=_OUTPUT_LINES_KEPT)
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    drain = asyncio.create_task(_drain(proc, output, port))
    try:
        try:
            async with asyncio.timeout(within):
                listening = await asyncio.shield(port)
        except (TimeoutError, EOFError):
            raise HocuspocusStartError("Hocuspocus did not start:\n" + "\n".join(output)) from None
        yield f"ws://127.0.0.1:{listening}"
    finally:
        await _stop(proc)
        await drain
        if not port.cancelled():
            port.exception()  # seen, so asyncio does not warn about it


async def _drain(
    proc: asyncio.subprocess.Process, output: deque[str], port: asyncio.Future[int]
) -> None:
    # Read until EOF so the server never blocks on a full pipe.
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        text = line.decode(errors="replace").rstrip()
        output.append(text)
        if text.startswith(_READY) and not port.done():
            port.set_result(int(text.removeprefix(_READY)))
    if not port.done():
        port.set_exception(EOFError())


async def _stop(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
