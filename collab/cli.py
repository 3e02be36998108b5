"""The ``collab`` command: serve | worker | migrate | replay | export | import."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence

from dotenv import load_dotenv

from collab.config import ConfigError, Settings

logger = logging.getLogger("collab")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; every command and option has a description."""
    parser = argparse.ArgumentParser(
        prog="collab",
        description="Real-time collaboration server. Settings come from COLLAB_* environment"
        " variables (and ./.env); see docs/configuration.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run one server node", description="Run one node.")
    serve.add_argument("--host", help="address to listen on (default: COLLAB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: COLLAB_PORT or 8080)")
    serve.add_argument(
        "--node-id", help="this node's name in logs and the event log (default: COLLAB_NODE_ID)"
    )
    sub.add_parser(
        "worker",
        help="run one code-execution worker (needs Redis)",
        description="Run jobs from the Redis queue (COLLAB_REDIS_URL).",
    )
    sub.add_parser(
        "migrate",
        help="apply schema migrations",
        description="Create or update the schema of COLLAB_DATABASE_URL.",
    )
    replay = sub.add_parser(
        "replay",
        help="rebuild a document from its event log",
        description="Rebuild a document from the event log of COLLAB_DATABASE_URL (read only).",
    )
    replay.add_argument("doc_id", help="the document's id")
    when = replay.add_mutually_exclusive_group()
    when.add_argument("--at", type=int, metavar="SEQ", help="stop after event number SEQ")
    when.add_argument(
        "--until", metavar="ISO_TIME", help="stop at this time, e.g. 2025-01-31T09:30:00Z"
    )
    replay.add_argument(
        "--verify",
        action="store_true",
        help="check every event and snapshot instead of printing the text",
    )
    replay.add_argument(
        "--format",
        choices=("text", "json", "yjs"),
        default="text",
        help="text (default), json with metadata, or the binary Yjs state",
    )
    replay.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export = sub.add_parser(
        "export",
        help="write a document's whole log to a portable file",
        description="Write every event of a document (with hashes and authors) to one file.",
    )
    export.add_argument("doc_id", help="the document's id")
    export.add_argument("--out", metavar="FILE", required=True, help="the file to write")
    imported = sub.add_parser(
        "import",
        help="create a document from an exported log",
        description="Verify an exported log's hash chain and recreate it as a new document.",
    )
    imported.add_argument("file", help="a file written by `collab export`")
    imported.add_argument(
        "--project", metavar="PROJECT_ID", required=True, help="the project to create it in"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    load_dotenv(".env", override=False)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"collab: configuration error: {exc}", file=sys.stderr)
        return 2
    command: Callable[[Settings, argparse.Namespace], int] = _COMMANDS[args.command]
    return command(settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from collab.server import serve

    return serve(
        dataclasses.replace(
            settings,
            host=args.host or settings.host,
            port=args.port if args.port is not None else settings.port,
            node_id=args.node_id or settings.node_id,
        )
    )


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from executor.worker import run_worker

    return run_worker(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from eventstore import apply_migrations, open_database

    async def migrate() -> list[int]:
        async with open_database(settings.database_url) as db:
            return await apply_migrations(db)

    applied = asyncio.run(migrate())
    print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from eventstore.replay_cli import run_replay

    if not _has_log(settings, args.command):
        return 2
    return run_replay(settings.database_url, args)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from collab.transfer import run_export

    if not _has_log(settings, args.command):
        return 2
    return run_export(settings.database_url, args)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from collab.transfer import run_import

    if not _has_log(settings, args.command):
        return 2
    return run_import(settings.database_url, args)


def _has_log(settings: Settings, command: str) -> bool:
    """Say why not in one line when the configured database holds no event log."""
    from collab.logcheck import missing_log_reason

    reason = asyncio.run(missing_log_reason(settings.database_url))
    if reason is not None:
        print(
            f"collab {command}: {reason}; set COLLAB_DATABASE_URL to the server's database,"
            " or create one with `collab migrate`",
            file=sys.stderr,
        )
    return reason is None


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "worker": _worker,
    "migrate": _migrate,
    "replay": _replay,
    "export": _export,
    "import": _import,
}
