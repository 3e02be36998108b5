"""Client addresses behind trusted proxies (for per-address rate limits)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from pytest_aiohttp import AiohttpClient

from collab.app import create_app
from collab.config import ConfigError, Settings, parse_networks
from collab.forwarded import client_address

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", "127.0.0.1"),
        ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # an untrusted peer's header is ignored
    ],
)
def test_client_address(peer: str, header: str, expected: str) -> None:
    assert client_address(peer, header, PROXIES) == expected


def test_bad_network_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="COLLAB_TRUSTED_PROXIES"):
        Settings.from_env({"COLLAB_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"})
    assert Settings.from_env({}).trusted_proxies == ()


async def test_failed_logins_behind_a_proxy_count_per_client(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    """Two clients behind one proxy do not share a login budget."""
    app = create_app(dataclasses.replace(settings, trusted_proxies=parse_networks("127.0.0.1")))
    client = await aiohttp_client(app)
    numbers = itertools.count()

    async def attempt(address: str) -> int:
        # A different email each time, so only the address budget is shared.
        data = {"email": f"user{next(numbers)}@example.com", "password": "wrong-password"}
        response = await client.post(
            "/api/auth/login", json=data, headers={"X-Forwarded-For": address}
        )
        return response.status

    first = [await attempt("203.0.113.1") for _ in range(settings.auth_failures_per_minute + 1)]
    assert first[-1] == 429
    assert await attempt("203.0.113.2") == 401
