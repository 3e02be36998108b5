"""Fixtures of the history tests: a node and a seeded document."""

from __future__ import annotations

import pytest

from auth.access import Role
from tests.conftest import Client
from tests.realtime.seed import Seeded, seed


@pytest.fixture
async def seeded(client: Client) -> Seeded:
    """A document with an owner, an editor, a viewer and a non-member."""
    return await seed(
        client.app,
        {"owner": Role.OWNER, "editor": Role.EDITOR, "viewer": Role.VIEWER, "stranger": None},
    )
