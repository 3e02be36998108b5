"""What `make run` does, on a machine with no Postgres, Redis or Node configured.

`make run` is `collab migrate` then `collab serve` with no settings at all:
the embedded default (SQLite under ./data, in-process relay and jobs).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import aiohttp

from tests.support.nodes import REPO_ROOT, running_node


def test_make_run_migrates_then_serves() -> None:
    # Under `make test` the parent make's flags would add "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", "RUNTIME_STAMP=pyproject.toml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    commands = [line.strip() for line in dry.stdout.splitlines() if "collab" in line]
    assert commands[-2:] == [".venv/bin/collab migrate", "exec .venv/bin/collab serve"]


async def test_embedded_default_serves_with_no_configuration(tmp_path: Path) -> None:
    async with running_node({}, workdir=tmp_path) as node, aiohttp.ClientSession() as http:
        for path, kind in (
            ("/healthz", "application/json"),
            ("/readyz", "application/json"),
            ("/api/docs", "text/html"),
            ("/api/docs/openapi.json", "application/json"),
            ("/", "text/html"),
        ):
            async with http.get(node.url + path) as response:
                assert response.status == 200, path
                assert response.content_type == kind, path
        async with http.get(node.url + "/readyz") as response:
            checks = (await response.json())["checks"]
        assert checks["database"] is True
        assert "redis" not in checks
    assert (tmp_path / "data" / "collab.db").exists()
    assert (tmp_path / "data" / "jwt_secret").stat().st_mode & 0o777 == 0o600
