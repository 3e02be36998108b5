"""Capacity modules as processes: a failure is reported with its error, a stop leaves nothing."""

from __future__ import annotations

import asyncio
import os
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


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_stopped_scenario_leaves_no_process_behind() -> None:
    require(POSTGRES_URL, 5432, "database")
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed by the keep-alive scenario")
    run = await capacity.start(capacity.KEEPALIVE, quick=True)  # 40 s of idling
    await asyncio.sleep(5)  # its collab node, the stock server and the clients are up
    assert group_alive(run.process.pid)
    await capacity.stop(run)
    for _ in range(50):  # a killed child is reaped a moment after its parent exits
        if not group_alive(run.process.pid):
            break
        await asyncio.sleep(0.1)
    assert not group_alive(run.process.pid)
