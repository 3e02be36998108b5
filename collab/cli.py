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
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="collab", description="Real-time collaboration server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run one server node")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--node-id")
    sub.add_parser("worker", help="run one code-execution worker (needs Redis)")
    sub.add_parser("migrate", help="apply schema migrations")
    replay = sub.add_parser("replay", help="rebuild a document from its event log")
    replay.add_argument("doc_id")
    when = replay.add_mutually_exclusive_group()
    when.add_argument("--at", type=int, metavar="SEQ")
    when.add_argument("--until", metavar="ISO_TIME")
    replay.add_argument("--verify", action="store_true")
    replay.add_argument("--format", choices=("text", "json", "yjs"), default="text")
    replay.add_argument("--out", metavar="FILE")
    export = sub.add_parser("export", help="write a document's whole log to a portable file")
    export.add_argument("doc_id")
    export.add_argument("--out", metavar="FILE", required=True)
    imported = sub.add_parser("import", help="create a document from an exported log")
    imported.add_argument("file")
    imported.add_argument("--project", metavar="PROJECT_ID", required=True)
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

    return run_replay(settings.database_url, args)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from collab.transfer import run_export

    return run_export(settings.database_url, args)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from collab.transfer import run_import

    return run_import(settings.database_url, args)


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": _serve,
    "worker": _worker,
    "migrate": _migrate,
    "replay": _replay,
    "export": _export,
    "import": _import,
}
