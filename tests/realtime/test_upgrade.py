"""The opening handshake: what is not a valid WebSocket upgrade gets a plain HTTP error."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from tests.conftest import Client
from tests.realtime.rawws import expected_accept, raw_connect
from tests.realtime.seed import Seeded, ws_path

KEY = base64.b64encode(os.urandom(16)).decode()
GOOD = {
    "Upgrade": "websocket",
    "Connection": "keep-alive, Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Upgrade": None, "Connection": None}, 400),
        ({"Upgrade": "h2c"}, 400),
        ({"Connection": "Upgrade-Insecure"}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": "not base64!"}, 400),
        ({"Sec-WebSocket-Key": base64.b64encode(b"short").decode()}, 400),
        ({"Sec-WebSocket-Version": "8"}, 426),
    ],
    ids=[
        "plain GET",
        "other protocol",
        "no upgrade token",
        "no key",
        "bad key",
        "short key",
        "old version",
    ],
)
async def test_invalid_upgrades_get_an_http_error(
    client: Client, seeded: Seeded, change: dict[str, str | None], status: int
) -> None:
    headers = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = await client.get(ws_path(seeded, "editor"), headers=headers)
    assert response.status == status
    if status == 426:
        assert response.headers["Sec-WebSocket-Version"] == "13"
    assert (await response.json())["error"]["code"]


def test_accept_key_of_rfc_6455_example() -> None:
    assert expected_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


async def test_a_valid_upgrade_is_answered_101_with_the_accept_key(
    client: Client, seeded: Seeded
) -> None:
    server = client.server
    async with raw_connect(
        str(server.host), int(server.port or 0), ws_path(seeded, "editor")
    ) as sock:
        head = sock.head.decode()
        assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
        assert "Upgrade: websocket" in head
        # The room's first frames follow (its sync step 1).
        opcode, _ = await asyncio.wait_for(sock.read_frame(), 5)
        assert opcode == 0x2
