"""Fixtures of the browser tests: a real node and Debian's headless Chromium.

Where the Chromium binary is missing the browser tests are skipped, except
under CI=true or COLLAB_REQUIRE_SERVICES=1, where that fails the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.people import CHROMIUM, CHROMIUM_ARGS, SECRET
from tests.services import services_required
from tests.support.nodes import RunningNode, running_node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    """One server on a fresh SQLite database."""
    env = {"COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "COLLAB_JWT_SECRET": SECRET}
    async with running_node(env, workdir=tmp_path / "node") as running:
        yield running


def require_chromium() -> None:
    """Skip without Chromium, or fail when services are required."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if services_required():
        pytest.fail(f"{message}; required under CI=true or COLLAB_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium."""
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
