"""Reconnect churn: does a lone stock client on a quiet document keep its connection?

Usage (from the repository root; needs Postgres and node)::

    .venv/bin/python -m bench.capacity_keepalive [--seconds 600] [--quick]

The stock y-websocket client closes a connection on which nothing arrived for
30 seconds and renews its own awareness every 15 seconds. One such client
connects alone to a document on a collab node and, in the same run, to the
stock ``@y/websocket-server``; nobody edits. After ``--seconds`` it prints one
JSON line per server with the client's connection attempts and closes (1 and
0 mean it stayed on its first connection). ``--quick`` waits 40 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.common import collab_nodes, postgres_database, seed_document
from tests.support.yjs import YjsClients, reference_server


async def lone_client(server: str, url: str, doc: str, token: str, seconds: float) -> None:
    """Connect one client, stay quiet for ``seconds``, report its connection history."""
    async with YjsClients() as yjs:
        result = await yjs.connect("lone", url, doc, token, keep_trying=True)
        await asyncio.sleep(seconds)
        status = await yjs.status("lone")
    print(
        json.dumps(
            {
                "bench": "capacity_keepalive",
                "figure": "lone_client",
                "server": server,
                "seconds": seconds,
                "synced_at_start": result.synced,
                "connected_at_end": status.connected,
                "attempts": status.attempts,
                "closes": status.close_count,
            }
        ),
        flush=True,
    )


async def main(seconds: float) -> None:
    """Both servers at once, so the run takes ``seconds`` once."""
    async with postgres_database() as url:
        seeded = await seed_document(url)
        async with collab_nodes(url, 1) as nodes, reference_server() as stock:
            await asyncio.gather(
                lone_client(
                    "collab", nodes[0].ws_url, seeded.doc_id, seeded.tokens["writer"], seconds
                ),
                lone_client("y-websocket-server", stock.ws_url, "quiet", "", seconds),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--quick", action="store_true", help="40 seconds")
    args = parser.parse_args()
    asyncio.run(main(40.0 if args.quick else args.seconds))
