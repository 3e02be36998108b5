"""The ``collab`` command as a user runs it: help, and read-only commands that create nothing."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from collab.cli import build_parser
from tests.eventstore.test_replay_cli import make_log
from tests.support.nodes import REPO_ROOT


def collab(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "collab", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_option_has_a_description() -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"serve", "worker", "migrate", "replay", "export", "import"}
    for name, command in commands.items():
        assert command.description, name
        for action in command._actions:
            assert action.help, f"collab {name} {action.option_strings or action.dest}"


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "replay", "export", "import"])
def test_help_lists_the_descriptions(tmp_path: Path, command: str) -> None:
    result = collab(tmp_path, command, "--help")
    assert result.returncode == 0
    assert "usage: collab" in result.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "some-doc"),
        ("export", "some-doc", "--out", "x.json"),
        ("import", "x.json", "--project", "p"),
    ],
)
def test_log_commands_outside_a_deployment_create_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = collab(tmp_path, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "COLLAB_DATABASE_URL" in lines[0] and "collab migrate" in lines[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # no ./data, no collab.db


def test_replay_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = collab(tmp_path, "replay", "doc", env={"COLLAB_DATABASE_URL": f"sqlite:///{empty}"})
    assert result.returncode != 0
    assert "has no collab schema" in result.stderr and "collab migrate" in result.stderr
    assert empty.read_bytes() == b""  # untouched


def test_replay_refuses_a_foreign_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all" * 100)
    result = collab(tmp_path, "replay", "doc", env={"COLLAB_DATABASE_URL": f"sqlite:///{junk}"})
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_progress_is_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    await make_log(url, "x" * 5000)
    result = collab(tmp_path, "replay", "doc", "--verify", env={"COLLAB_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("replaying")]
    assert 2 <= len(progress) <= 11
    assert progress[-1] == "replaying: 5000/5000 events"
