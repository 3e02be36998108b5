"""A capacity module that fails is reported as failed with its error, not taken for figures."""

from __future__ import annotations

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
