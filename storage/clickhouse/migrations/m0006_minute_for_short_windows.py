"""Migration 0006: the minute roll-ups hold only windows shorter than a minute.

A window of one minute or longer starts in exactly one minute, so its minute roll-up row was
a copy of its raw row: for 5-minute windows the minute level doubled the work of every insert
(a ``GROUP BY`` and a part written for as many rows as the raw table), measured by
``benchmarks/storage.py``. After this migration each raw table feeds two views with
complementary filters on the window's length (``window_end - window_start``):

- shorter than a minute: raw -> ``*_rollup_minute`` -> ``*_rollup_hour``, as before;
- a minute or longer: raw -> ``*_rollup_hour`` directly, the same sums per hour.

The hourly and daily roll-ups therefore hold every window exactly as before. The minute level
is read through the views ``drift_rollup_minute_all`` / ``window_rollup_minute_all``: the
minute roll-up's rows, then one row per raw window of a minute or longer (``windows`` = 1 and
the window's own values as sums, maxima and minima), which is exactly the row the minute
roll-up would have folded it into. As for every roll-up, rows are partial: a reader
aggregates again with ``GROUP BY``.

Existing minute rows are rebuilt from the raw tables (emptied, then the short windows folded
in again) with the views dropped, so nothing reaches the hourly roll-ups twice; backwards
rebuilds them from every raw window and restores migration 0004's views. Every step can run
again (a run cut short repeats safely); as for migration 0004, run ``driftline migrate``
with the writers stopped.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration
from storage.clickhouse.migrations.m0004_lean_rollups import (
    DRIFT_MINUTE_MV,
    WINDOW_MINUTE_MV,
    _drift_view,
    _window_view,
)

SHORT = "window_end < window_start + INTERVAL 1 MINUTE"
"""A raw window shorter than a minute: the only kind the minute roll-ups hold."""

_MINUTE = "toStartOfMinute(toDateTime(window_start, 'UTC'))"
_HOUR = "toStartOfHour(toDateTime(window_start, 'UTC'))"

_DRIFT_SUMS = """toUInt64(count()) AS windows,
       toUInt64(countIf(drifted)) AS drifted_windows,
       sum(value) AS value_sum,
       max(value) AS value_max,
       min(p_value) AS p_value_min"""

_WINDOW_SUMS = """toUInt64(count()) AS windows,
       sum(event_count) AS events,
       sum(error_count) AS errors,
       sum(late_count) AS late,
       sum(latency_p50_ms * event_count) AS latency_p50_weighted,
       max(latency_p99_ms) AS latency_p99_max,
       sum(prediction_mean * event_count) AS prediction_mean_weighted"""


def drift_from_raw(level: str, start_of: str, where: str) -> str:
    """Raw drift results matching ``where`` summed per ``level`` bucket (``start_of``)."""
    return f"""
SELECT organization, deployment, {start_of} AS {level}, feature, statistic,
       {_DRIFT_SUMS}
FROM drift_results WHERE {where}
GROUP BY organization, deployment, {level}, feature, statistic"""


def windows_from_raw(level: str, start_of: str, where: str) -> str:
    """Raw window aggregates matching ``where`` summed per ``level`` bucket (``start_of``)."""
    return f"""
SELECT organization, deployment, {start_of} AS {level},
       {_WINDOW_SUMS}
FROM window_aggregates WHERE {where}
GROUP BY organization, deployment, {level}"""


_FROM_RAW = {"drift": drift_from_raw, "window": windows_from_raw}
_COLUMNS = {
    "drift": "organization, deployment, minute, feature, statistic, windows, drifted_windows, "
    "value_sum, value_max, p_value_min",
    "window": "organization, deployment, minute, windows, events, errors, late, "
    "latency_p50_weighted, latency_p99_max, prediction_mean_weighted",
}

DRIFT_MINUTE_ALL = f"""
CREATE VIEW IF NOT EXISTS drift_rollup_minute_all AS
SELECT {_COLUMNS["drift"]}
FROM drift_rollup_minute
UNION ALL
SELECT organization, deployment, {_MINUTE} AS minute, feature, statistic,
       toUInt64(1) AS windows, toUInt64(drifted) AS drifted_windows,
       value AS value_sum, value AS value_max, p_value AS p_value_min
FROM drift_results WHERE NOT ({SHORT})
"""
"""The minute level of drift: minute roll-up rows and the longer windows' raw rows."""

WINDOW_MINUTE_ALL = f"""
CREATE VIEW IF NOT EXISTS window_rollup_minute_all AS
SELECT {_COLUMNS["window"]}
FROM window_rollup_minute
UNION ALL
SELECT organization, deployment, {_MINUTE} AS minute,
       toUInt64(1) AS windows, event_count AS events, error_count AS errors,
       late_count AS late, latency_p50_ms * event_count AS latency_p50_weighted,
       latency_p99_ms AS latency_p99_max, prediction_mean * event_count AS prediction_mean_weighted
FROM window_aggregates WHERE NOT ({SHORT})
"""
"""The minute level of traffic: minute roll-up rows and the longer windows' raw rows."""

_KINDS = ("drift", "window")
_VIEWS = tuple(
    f"{kind}_rollup_{name}"
    for kind in _KINDS
    for name in ("minute_all", "hour_raw_mv", "hour_mv", "minute_mv")
)


def _rebuild_minutes(kind: str, where: str) -> tuple[str, str]:
    """Empty ``<kind>_rollup_minute`` and fold the raw windows matching ``where`` into it.

    Run while no view reads the minute roll-up, so the hourly roll-up is left as it is.
    """
    table = f"{kind}_rollup_minute"
    return (
        f"TRUNCATE TABLE IF EXISTS {table}",
        f"INSERT INTO {table} ({_COLUMNS[kind]}) {_FROM_RAW[kind]('minute', _MINUTE, where)}",
    )


def _forwards() -> tuple[str, ...]:
    steps = [f"DROP VIEW IF EXISTS {view}" for view in _VIEWS]
    for kind in _KINDS:
        steps += _rebuild_minutes(kind, SHORT)
    for kind, view in (("drift", _drift_view), ("window", _window_view)):
        source = _FROM_RAW[kind]
        steps += [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {kind}_rollup_minute_mv "
            f"TO {kind}_rollup_minute AS {source('minute', _MINUTE, SHORT)}",
            view("hour", f"{kind}_rollup_minute", "toStartOfHour(minute)"),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {kind}_rollup_hour_raw_mv "
            f"TO {kind}_rollup_hour AS {source('hour', _HOUR, f'NOT ({SHORT})')}",
        ]
    return (*steps, DRIFT_MINUTE_ALL, WINDOW_MINUTE_ALL)


def _backwards() -> tuple[str, ...]:
    steps = [f"DROP VIEW IF EXISTS {view}" for view in _VIEWS]
    for kind in _KINDS:
        steps += _rebuild_minutes(kind, "1")
    return (
        *steps,
        DRIFT_MINUTE_MV,
        _drift_view("hour", "drift_rollup_minute", "toStartOfHour(minute)"),
        WINDOW_MINUTE_MV,
        _window_view("hour", "window_rollup_minute", "toStartOfHour(minute)"),
    )


MIGRATION = Migration(
    version=6,
    name="minute_for_short_windows",
    forwards=_forwards(),
    backwards=_backwards(),
)
