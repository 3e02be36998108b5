"""``collab serve`` as an operator sees it: a busy port, Ctrl-C, and streams at shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import signal
import socket
import time
from pathlib import Path

import aiohttp

from collab.config import Settings
from collab.server import GC_THRESHOLDS, serve
from tests.collab.test_config import serve_fails
from tests.conftest import TEST_SECRET
from tests.support.nodes import running_node


def test_busy_port_is_one_line_with_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, stderr = serve_fails({"COLLAB_JWT_SECRET": TEST_SECRET}, tmp_path, port=port)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert f"port {port}" in lines[0] and "already in use" in lines[0]
    assert "--port" in lines[0] and "COLLAB_PORT" in lines[0]
    assert "serving on" not in stderr
    assert not (tmp_path / "data").exists()  # failed before touching the database


async def test_ctrl_c_prints_a_shutdown_line(tmp_path: Path) -> None:
    env = {"COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "COLLAB_JWT_SECRET": TEST_SECRET}
    async with running_node(env, workdir=tmp_path / "node") as node:
        assert f"serving on http://127.0.0.1:{node.port}" in node.log_text()
        assert await node.stop(signal.SIGINT) == 0
        log = node.log_text()
    assert "SIGINT received, shutting down" in log
    assert "Traceback" not in log


async def test_shutdown_ends_open_event_streams(tmp_path: Path) -> None:
    env = {"COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "COLLAB_JWT_SECRET": TEST_SECRET}
    async with (
        running_node(env, workdir=tmp_path / "node") as node,
        aiohttp.ClientSession() as http,
    ):
        register = await http.post(
            f"{node.url}/api/auth/register",
            json={"email": "a@example.com", "password": "x" * 12, "display_name": "A"},
        )
        headers = {"Authorization": f"Bearer {(await register.json())['access_token']}"}
        project = await (
            await http.post(f"{node.url}/api/projects", json={"name": "p"}, headers=headers)
        ).json()
        job = await http.post(
            f"{node.url}/api/jobs",
            json={
                "project_id": project["id"],
                "language": "python",
                "source": "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
                "timeout_ms": 30000,
            },
            headers=headers,
        )
        assert job.status in (201, 202), await job.text()
        job_id = (await job.json())["id"]
        job_stream = await http.get(f"{node.url}/api/jobs/{job_id}/events", headers=headers)
        live_stream = await http.get(f"{node.url}/api/events", headers=headers)
        assert job_stream.status == live_stream.status == 200
        async with asyncio.timeout(20):
            while b"started" not in await job_stream.content.readline():
                pass
        started = time.monotonic()
        assert await node.stop(signal.SIGINT, grace=30) == 0
        assert time.monotonic() - started < 8  # not the 10 s shutdown timeout, nor the job
        async with asyncio.timeout(5):
            await job_stream.content.read()
            await live_stream.content.read()
        assert "SIGINT received, shutting down" in node.log_text()


def test_a_serving_node_collects_with_its_own_thresholds(tmp_path: Path) -> None:
    # The thresholds are set before the port is bound, so a busy port is
    # enough to see them without starting a node.
    settings = Settings.from_env({"COLLAB_JWT_SECRET": TEST_SECRET})
    defaults = gc.get_threshold()
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            busy_port = busy.getsockname()[1]
            assert serve(dataclasses.replace(settings, port=busy_port)) == 1
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*defaults)
