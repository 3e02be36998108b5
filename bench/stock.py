"""The stock Yjs client as a benchmark driver: ``bench/js/driver.mjs`` in one Node process.

Every scenario of :mod:`bench.suite` drives the servers with the same npm client
(``yjs`` + ``y-websocket``'s ``WebsocketProvider``, pinned in ``bench/js``), so
collab and the stock server see exactly the same traffic, and all times of one run
come from one clock (Node's ``performance.now``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchSkipError

JS_DIR = REPO_ROOT / "bench" / "js"
DRIVER = JS_DIR / "driver.mjs"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client connects: ``{base}/{room}?token={token}``.

    ``protocol`` picks the client: ``y-websocket`` (the stock provider) or
    ``hocuspocus`` (Hocuspocus' own provider, which names the room in every message).
    """

    base: str
    room: str
    token: str | None = None
    protocol: str = "y-websocket"


def ensure_js() -> None:
    """Install ``bench/js`` from its lockfile (``npm ci``) unless it is installed already.

    Raises:
        BenchSkipError: Node.js or npm is missing, or the install failed.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchSkipError("node and npm are needed for the stock client")
    stamp = JS_DIR / "node_modules" / ".installed"
    # As make does: a lockfile newer than the install (a package added) means install again.
    lock = JS_DIR / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchSkipError(f"npm ci in bench/js failed: {done.stderr[-500:]}")
    stamp.touch()


async def run_driver(spec: dict[str, Any], *, limit: float) -> dict[str, Any]:
    """Run the driver on ``spec`` and return its JSON result.

    Raises:
        BenchSkipError: Node.js is missing.
        RuntimeError: the driver failed or did not finish within ``limit`` seconds.
    """
    await asyncio.to_thread(ensure_js)
    with tempfile.TemporaryDirectory(prefix="collab-bench-js-") as directory:
        spec_path = Path(directory, "spec.json")
        await asyncio.to_thread(spec_path.write_text, json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            str(spec_path),
            cwd=JS_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(limit):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"stock client driver took over {limit:.0f} s") from None
    lines = out.decode().strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        detail = err.decode()[-800:]
        raise RuntimeError(f"stock client driver printed no result: {detail}") from None
    if proc.returncode != 0 or "error" in result or not result:
        detail = result.get("error") or err.decode()[-800:]
        raise RuntimeError(f"stock client driver failed: {detail}")
    return result


def endpoints(urls: Sequence[Endpoint]) -> list[dict[str, Any]]:
    """``Endpoint`` objects as the driver's JSON."""
    return [asdict(url) for url in urls]
