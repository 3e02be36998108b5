"""Capacity modules as processes: a failure is reported with its error, a stop leaves nothing."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace

import pytest

from bench import capacity
from tests.services import POSTGRES_URL, require

pytestmark = [pytest.mark.postgres, pytest.mark.node]


async def test_a_module_that_exits_with_an_error_is_a_failure() -> None:
    require(POSTGRES_URL, 5432, "database")
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed by the keep-alive scenario")
    # The real keep-alive module, given an option it does not know: argparse exits with 2.
    broken = replace(capacity.KEEPALIVE, quick=("--no-such-option",))
    run = await capacity.start(broken, quick=True)
    rows: list[capacity.Row] = []
    with pytest.raises(RuntimeError, match=r"bench.capacity_keepalive exited with 2.*no-such"):
        await capacity.collect(run, True, rows)
    assert rows == []
    assert run.process.returncode == 2


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped does not count)."""
    running = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.append(pid)
    return running


async def test_a_stopped_scenario_leaves_no_process_behind() -> None:
    require(POSTGRES_URL, 5432, "database")
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed by the keep-alive scenario")
    run = await capacity.start(capacity.KEEPALIVE, quick=True)  # 40 s of idling
    await asyncio.sleep(5)  # its collab node, the stock server and the clients are up
    started = capacity.descendants(run.process.pid)
    assert len(started) >= 3
    await capacity.stop(run)
    assert run.process.returncode is not None
    for _ in range(50):  # bounded: a node may take a moment to exit after its parent
        if not alive(started):
            break
        await asyncio.sleep(0.1)
    assert alive(started) == []
