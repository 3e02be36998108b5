"""Read Server-Sent Events from an aiohttp response in tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse


@dataclass(frozen=True)
class SseMessage:
    """One event of a stream."""

    type: str
    id: str
    data: dict[str, Any]


class SseReader:
    """Parses ``text/event-stream`` lines; comments are counted, not returned."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, within: float = 10.0) -> SseMessage | None:
        """The next event, or None when the stream ended."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(within):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in fields:
                        return SseMessage(
                            fields.get("event", "message"),
                            fields.get("id", ""),
                            json.loads(fields["data"]),
                        )
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    async def next_of(self, type_: str, within: float = 10.0) -> SseMessage:
        """The next event of ``type_`` (others are skipped)."""
        async with asyncio.timeout(within):
            while True:
                message = await self.next(within)
                assert message is not None, f"the stream ended before a {type_} event"
                if message.type == type_:
                    return message
