"""The capacity part of the suite's report: one target row per limit, one table per figure.

The rows are the capacity modules' JSON lines as printed (:mod:`bench.capacity`).
A target is judged on the line that carries its figure; a figure printed more
than once (at two history lengths, say) gives one target row per line, and a
key a module adds later becomes one more column of its table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.capacity import SCENARIOS, Row
from bench.common import fmt, markdown_table
from eventstore.retention import AGE_PER_GAP, BASE_GAP, KEEP_NEWEST, most_kept

COLLAB = "collab"
STOCK = "y-websocket-server"
# The targets: collab against the stock server in the same run where it has a
# counterpart, absolute limits where it has none.
KIB_PER_CONNECTION_RATIO = 1.0
STORM_SECONDS_RATIO = 1.5
KEEPALIVE_SECONDS = 600.0
IDLE_CPU_PERCENT = 2.0
IDLE_QUERIES_PER_SECOND = 10.0
BYTES_PER_EVENT = 120.0
TIME_TRAVEL_MAX_MS = 50.0
VERIFY_EVENTS_PER_SECOND = 150_000.0

# target, collab, stock, ratio or limit, verdict
TargetRow = list[str]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _number(row: Row | None, key: str) -> float:
    """``row[key]`` as a float; nan when the row or the key is missing or not a number."""
    value = None if row is None else row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else math.nan


def _figures(rows: Sequence[Row], bench: str, figure: str, server: str | None = None) -> list[Row]:
    return [
        r
        for r in rows
        if r.get("bench") == bench
        and r.get("figure") == figure
        and (server is None or r.get("server") == server)
    ]


def _pairs(rows: Sequence[Row], bench: str, figure: str) -> list[tuple[Row, Row | None]]:
    """Each collab line with the stock line printed in the same place (nth with nth)."""
    mine = _figures(rows, bench, figure, COLLAB)
    stock = _figures(rows, bench, figure, STOCK)
    return [(row, stock[i] if i < len(stock) else None) for i, row in enumerate(mine)]


def _events(row: Row) -> str:
    """Which history length a log figure is about, when the line says."""
    events = _number(row, "events")
    return "" if math.isnan(events) else f", {events:,.0f} events"


def _idle_memory_rows(rows: Sequence[Row]) -> list[TargetRow]:
    result = []
    for mine, stock in _pairs(rows, "capacity_connections", "idle_memory"):
        kib, stock_kib = _number(mine, "kib_per_connection"), _number(stock, "kib_per_connection")
        ratio = _ratio(kib, stock_kib)
        result.append(
            [
                f"idle memory per connection, {_number(mine, 'clients'):,.0f} clients",
                f"{fmt(kib)} KiB",
                f"{fmt(stock_kib)} KiB",
                f"{fmt(ratio, 2)}x (≤ {KIB_PER_CONNECTION_RATIO:g}x)",
                _verdict(ratio <= KIB_PER_CONNECTION_RATIO),
            ]
        )
    return result


def _storm_cell(row: Row | None) -> str:
    if row is None:
        return "-"
    synced, clients = _number(row, "synced"), _number(row, "clients")
    cell = f"{fmt(_number(row, 'seconds'), 2)} s, {fmt(synced, 0)}/{fmt(clients, 0)} synced"
    retries = row.get("retries")
    return cell if not retries else f"{cell}, {retries:,} retries"


_STORM_PRESENCE = {"off": ", presence off", "cursor": ", each with a cursor"}


def _storm_rows(rows: Sequence[Row]) -> list[TargetRow]:
    result = []
    for mine, stock in _pairs(rows, "capacity_connections", "reconnect_storm"):
        ratio = _ratio(_number(mine, "seconds"), _number(stock, "seconds"))
        all_synced = _number(mine, "synced") == _number(mine, "clients")
        result.append(
            [
                f"reconnect storm, {_number(mine, 'clients'):,.0f} clients"
                + _STORM_PRESENCE.get(str(mine.get("presence")), ""),
                _storm_cell(mine),
                _storm_cell(stock),
                f"{fmt(ratio, 2)}x (≤ {STORM_SECONDS_RATIO:g}x, all synced)",
                _storm_verdict(ratio, all_synced, stock),
            ]
        )
    return result


def _storm_verdict(ratio: float, all_synced: bool, stock: Row | None) -> str:
    """Met only against a stock run that resynced every client too.

    A stock server that lost clients has no time to compare with: its run
    ended at the bench's timeout, which says nothing of how fast it is.
    """
    if stock is not None and _number(stock, "synced") != _number(stock, "clients"):
        return "**not judged** (the stock server did not resync every client)"
    return _verdict(ratio <= STORM_SECONDS_RATIO and all_synced)


def _keepalive_cell(row: Row | None) -> str:
    if row is None:
        return "-"
    return f"attempts {fmt(_number(row, 'attempts'), 0)}, closes {fmt(_number(row, 'closes'), 0)}"


def _keepalive_rows(rows: Sequence[Row]) -> list[TargetRow]:
    result = []
    for mine, stock in _pairs(rows, "capacity_keepalive", "lone_client"):
        seconds = _number(mine, "seconds")
        stayed = _number(mine, "attempts") == 1 and _number(mine, "closes") == 0
        result.append(
            [
                f"keep-alive, lone quiet client, {fmt(seconds, 0)} s",
                _keepalive_cell(mine),
                _keepalive_cell(stock),
                f"1 attempt, no close, for {KEEPALIVE_SECONDS:.0f} s",
                _verdict(stayed and seconds >= KEEPALIVE_SECONDS),
            ]
        )
    return result


def _idle_rooms_rows(rows: Sequence[Row]) -> list[TargetRow]:
    result = []
    for row in _figures(rows, "capacity_idle_rooms", "idle_rooms"):
        what = (
            f"idle rooms, {_number(row, 'rooms'):,.0f} over"
            f" {_number(row, 'projects'):,.0f} projects"
        )
        all_open = row.get("open_failed", 0) == 0
        cpu, queries = _number(row, "cpu_percent_of_core"), _number(row, "queries_per_second")
        result += [
            _limit_row(
                f"{what}: node CPU",
                f"{fmt(cpu, 2)} % of a core",
                f"≤ {IDLE_CPU_PERCENT:g} %, every room open",
                cpu <= IDLE_CPU_PERCENT and all_open,
            ),
            _limit_row(
                f"{what}: database queries",
                f"{fmt(queries, 2)}/s",
                f"≤ {IDLE_QUERIES_PER_SECOND:g}/s, every room open",
                queries <= IDLE_QUERIES_PER_SECOND and all_open,
            ),
        ]
    return result


def _limit_row(what: str, collab: str, limit: str, ok: bool) -> TargetRow:
    """A target with no stock counterpart: an absolute limit."""
    return [what, collab, "-", limit, _verdict(ok)]


def _log_bytes_row(row: Row) -> TargetRow:
    size = _number(row, "bytes_per_event")
    return _limit_row(
        f"log bytes per event{_events(row)}",
        f"{fmt(size)} B",
        f"≤ {BYTES_PER_EVENT:g} B",
        size <= BYTES_PER_EVENT,
    )


def _snapshots_row(row: Row) -> TargetRow:
    kept, events = _number(row, "kept"), _number(row, "events")
    bound = math.nan if math.isnan(events) else most_kept(int(events))
    return _limit_row(
        f"snapshots kept{_events(row)}",
        f"{fmt(kept, 0)} ({fmt(_number(row, 'total_over_state'))} times the state)",
        f"≤ {KEEP_NEWEST + 1} + {AGE_PER_GAP}·log2(events / {BASE_GAP:,}) = {fmt(bound)}",
        kept <= bound,
    )


def _time_travel_row(row: Row) -> TargetRow:
    worst = _number(row, "max_ms")
    return _limit_row(
        f"time travel, random seqs, head, longest replays{_events(row)}",
        f"p50 {fmt(_number(row, 'p50_ms'))} ms, max {fmt(worst)} ms",
        f"max ≤ {TIME_TRAVEL_MAX_MS:g} ms",
        worst <= TIME_TRAVEL_MAX_MS,
    )


def _verify_row(row: Row) -> TargetRow:
    speed = _number(row, "events_per_second")
    return _limit_row(
        f"`collab replay --verify`{_events(row)}",
        f"{fmt(speed, 0)} events/s, peak RSS {fmt(_number(row, 'peak_rss_mib'))} MiB",
        f"≥ {VERIFY_EVENTS_PER_SECOND:,.0f} events/s, text verified",
        speed >= VERIFY_EVENTS_PER_SECOND and row.get("ok", True) is True,
    )


# Each figure of the log scenario, and how one of its lines is judged.
_LOG_FIGURES: tuple[tuple[str, Callable[[Row], TargetRow]], ...] = (
    ("log_bytes", _log_bytes_row),
    ("snapshots", _snapshots_row),
    ("time_travel", _time_travel_row),
    ("verify", _verify_row),
)


def _log_rows(rows: Sequence[Row]) -> list[TargetRow]:
    return [
        judge(row)
        for figure, judge in _LOG_FIGURES
        for row in _figures(rows, "capacity_log", figure)
    ]


_TARGETS: tuple[Callable[[Sequence[Row]], list[TargetRow]], ...] = (
    _idle_memory_rows,
    _storm_rows,
    _keepalive_rows,
    _idle_rooms_rows,
    _log_rows,
)


def capacity_target_rows(rows: Sequence[Row]) -> list[TargetRow]:
    """One row per capacity target and figure line: what, collab, stock, limit, verdict."""
    return [target for judge in _TARGETS for target in judge(rows)]


def capacity_target_table(rows: Sequence[Row]) -> str:
    """The capacity targets as a markdown table."""
    headers = ["target", "collab", "stock", "ratio or limit", "verdict"]
    return markdown_table(headers, capacity_target_rows(rows))


# -- the scenarios' tables ------------------------------------------------------


def cell(value: object) -> str:
    """A JSON value for a markdown cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def figure_table(rows: Sequence[Row]) -> str:
    """One row per line, one column per key any of them has (first seen first)."""
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in ("bench", "figure") and k not in headers]
    return markdown_table(headers, [[cell(row.get(k)) for k in headers] for row in rows])


def scenario_tables(rows: Sequence[Row], quick: bool) -> list[str]:
    """Per scenario, the command that ran it and a table per figure, in the order printed."""
    parts = []
    for scenario in SCENARIOS:
        bench = scenario.module.removeprefix("bench.")
        mine = [r for r in rows if r.get("bench") == bench]
        parts += [f"##### {scenario.name} (`{scenario.command(quick)}`)", ""]
        if not mine:
            parts += ["(no figures)", ""]
        figures = list(dict.fromkeys(str(r.get("figure")) for r in mine))
        for figure in figures:
            table = figure_table([r for r in mine if r.get("figure") == figure])
            parts += [f"`{figure}`:", "", table, ""]
    return parts


def summary_lines(rows: Sequence[Row]) -> list[str]:
    """The capacity targets as printed at the end of the run."""
    lines = []
    for what, mine, stock, limit, verdict in capacity_target_rows(rows):
        against = "" if stock == "-" else f"; stock {stock}"
        lines.append(f"{what}: collab {mine}{against}; {limit} [{verdict.replace('*', '')}]")
    return lines
