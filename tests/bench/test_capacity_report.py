"""The capacity report reads the modules' JSON lines as they are: new keys, repeats, gaps."""

from __future__ import annotations

from bench.capacity import Row, parse_rows
from bench.capacity_report import capacity_target_rows, figure_table, summary_lines

LOG = "capacity_log"


def log_line(figure: str, events: int, **values: object) -> dict[str, object]:
    return {"bench": LOG, "figure": figure, "events": events, **values}


def test_only_figure_lines_are_kept() -> None:
    stdout = 'starting\n{"bench": "x", "figure": "f", "a": 1}\n[1, 2]\n{"no": "figure"}\n'
    assert parse_rows(stdout) == [{"bench": "x", "figure": "f", "a": 1}]


def test_a_figure_printed_twice_gives_two_target_rows() -> None:
    rows = [
        log_line("log_bytes", 20_000, bytes_per_event=40.0),
        log_line("log_bytes", 260_000, bytes_per_event=130.0),
    ]
    targets = capacity_target_rows(rows)
    assert [t[0] for t in targets] == [
        "log bytes per event, 20,000 events",
        "log bytes per event, 260,000 events",
    ]
    assert [t[-1] for t in targets] == ["met", "**missed**"]


def test_a_new_key_becomes_a_column() -> None:
    rows = [
        log_line("verify", 100, ok=True, events_per_second=200_000),
        log_line("verify", 200, ok=True, events_per_second=210_000, new_key="x"),
    ]
    header, _, first, second = figure_table(rows).splitlines()
    assert header == "| events | ok | events_per_second | new_key |"
    assert first.endswith("| 200,000 | - |") and second.endswith("| 210,000 | x |")


def test_a_missing_figure_misses_its_target() -> None:
    collab_only = storm_line("collab", 1.0)
    [target] = capacity_target_rows([collab_only])
    assert target[2] == "-" and target[-1] == "**missed**"
    assert summary_lines([collab_only])[0].endswith("[missed]")


def storm_line(server: str, seconds: float, synced: int = 10, **values: object) -> Row:
    return {
        "bench": "capacity_connections",
        "figure": "reconnect_storm",
        "server": server,
        "clients": 10,
        "synced": synced,
        "seconds": seconds,
        **values,
    }


def test_a_storm_the_stock_server_did_not_finish_is_not_judged() -> None:
    rows = [storm_line("collab", 40.0), storm_line("y-websocket-server", 120.0, synced=3)]
    [target] = capacity_target_rows(rows)
    assert target[-1].startswith("**not judged**")
    assert "[not judged" in summary_lines(rows)[0]


def test_a_storm_shows_the_clients_retries() -> None:
    rows = [
        storm_line("collab", 3.0, retries=1234),
        storm_line("y-websocket-server", 2.0, retries=0),
    ]
    [target] = capacity_target_rows(rows)
    assert target[1] == "3.00 s, 10/10 synced, 1,234 retries"
    assert target[2] == "2.00 s, 10/10 synced"
    assert target[-1] == "met"


def test_a_failed_verify_misses_however_fast() -> None:
    rows = [log_line("verify", 100, ok=False, events_per_second=10**9)]
    assert capacity_target_rows(rows)[0][-1] == "**missed**"


def test_each_storm_is_judged_under_its_presence() -> None:
    rows = [
        storm_line("collab", 2.0, presence="off"),
        storm_line("collab", 9.0, presence="cursor"),
        storm_line("y-websocket-server", 2.0, presence="off"),
        storm_line("y-websocket-server", 70.0, presence="cursor"),
    ]
    targets = capacity_target_rows(rows)
    assert [t[0] for t in targets] == [
        "reconnect storm, 10 clients, presence off",
        "reconnect storm, 10 clients, each with a cursor",
    ]
    assert [t[-1] for t in targets] == ["met", "met"]
