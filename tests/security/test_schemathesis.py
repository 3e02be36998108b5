"""schemathesis against a live node: no 5xx, no undocumented status, no valid request refused.

Runs the schemathesis 4 CLI (``--checks all``, 50 examples per operation, a
fixed seed) against a real ``collab serve`` with an access token. The two
Server-Sent-Event routes are left out: a valid request to them is an endless
stream, which a fuzzer can only report as a read timeout; their input checks
are covered by the ordinary tests.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import TEST_SECRET
from tests.support.nodes import running_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXCLUDED_PATHS = r"/(changes|events)$"
RUN_SECONDS_MAX = 420
CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")


def schemathesis_command(node_url: str, token: str) -> list[str]:
    """The CLI run: every check, 50 examples per operation, seed 1, no example cache."""
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("schemathesis is not installed (it is in the dev dependency group)")
    return [
        binary,
        "--config-file",
        str(CONFIG_FILE),
        "run",
        f"{node_url}/api/docs/openapi.json",
        "--checks",
        "all",
        "-n",
        "50",
        "--seed",
        "1",
        "-H",
        f"Authorization: Bearer {token}",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--exclude-path-regex",
        EXCLUDED_PATHS,
        "--no-color",
    ]


async def register(node_url: str) -> str:
    body = {"email": "fuzz@example.com", "password": "correct horse battery", "display_name": "Fz"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{node_url}/api/auth/register", json=body) as response,
    ):
        assert response.status == 201, await response.text()
        return str((await response.json())["access_token"])


async def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    env = {
        "COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/fuzz.db",
        "COLLAB_JWT_SECRET": TEST_SECRET,
    }
    async with running_node(env, workdir=tmp_path / "node") as node:
        token = await register(node.url)
        process = await asyncio.create_subprocess_exec(
            *schemathesis_command(node.url, token),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(RUN_SECONDS_MAX):
                output, _ = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        report = output.decode(errors="replace")
        assert process.returncode == 0, report[-8000:]
        assert "5xx" not in report.split("SUMMARY")[-1]
        log = node.log_text()
    # The error middleware logs anything that escaped as "unhandled error" (a 500).
    assert "unhandled error" not in log, log[-4000:]
